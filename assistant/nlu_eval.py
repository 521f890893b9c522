"""Measuring the NLU on the held-out split: the training-data reader, the metrics and the baseline.

Pure: every function takes text or parsed results and returns values, so the unit tests, the
`crm-assistant eval nlu` command and the e2e test compute the same figures the same way.
Rasa's YAML training-data format (3.x) is read here with a small reader of our own, because Rasa
itself lives in another virtual environment.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# The intents that change CRM data: confusing one of these with another intent is the costly mistake.
WRITE_INTENTS = frozenset(
    {
        "create_lead",
        "create_contact",
        "create_account",
        "create_deal",
        "update_deal",
        "convert_lead",
        "log_activity",
        "create_task",
        "create_recurring",
        "book_meeting",
        "run_macro",
        "rescore_lead",
        "qualify_lead",
        "undo",
    }
)
FALLBACK_INTENT = "nlu_fallback"
# Only these extractors' entities are scored; spaCy's (PERSON, ORG, DATE, ...) are only counted.
SCORED_EXTRACTORS = frozenset({"DIETClassifier", "EntitySynonymMapper"})
SPACY_EXTRACTOR = "SpacyEntityExtractor"
CONFUSION_EXAMPLES = 3
DIGITS = 4

# `[text](entity)`, the old `[text](entity:value)`, or `[text]{"entity": "x", "value": "y"}`.
ANNOTATION = re.compile(r"\[(?P<text>[^\]]+?)\](?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<attrs>[^}]+?)\})")


class TrainingDataError(ValueError):
    """An example or annotation that Rasa would reject too."""


@dataclass(frozen=True)
class Span:
    """One annotated entity: its name, its normalised value and where it sits in the plain text."""

    entity: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Example:
    """One training or held-out example: the text without annotation brackets, its intent, its entities."""

    text: str
    intent: str
    entities: tuple[Span, ...] = ()


@dataclass
class NluData:
    """The examples of one or more training-data files and the synonyms they define (lower-case text → value)."""

    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)

    def extend(self, other: NluData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)


@dataclass(frozen=True)
class PredictedEntity:
    entity: str
    value: str
    start: int
    end: int
    extractor: str


@dataclass(frozen=True)
class Parse:
    """What the model said about one text (Rasa's parse result, reduced)."""

    intent: str
    confidence: float
    entities: tuple[PredictedEntity, ...] = ()


# --- reading ---------------------------------------------------------------------------------------
def parse_example(line: str, intent: str = "") -> Example:
    """An example line with inline annotations → the plain text and the entity spans in it."""
    spans: list[Span] = []
    plain: list[str] = []
    position = 0  # index in `line` up to which text was copied
    length = 0  # length of the plain text so far
    for match in ANNOTATION.finditer(line):
        plain.append(line[position : match.start()])
        length += match.start() - position
        surface = match["text"]
        if match["attrs"] is not None:
            attrs = _attributes(match["attrs"], line)
            entity, value = attrs.get("entity"), attrs.get("value", surface)
        else:
            entity, value = match["entity"], match["value"] or surface
        if not isinstance(entity, str) or not entity.strip():
            raise TrainingDataError(f"annotation without an entity name in {line!r}")
        spans.append(Span(entity.strip(), str(value), length, length + len(surface)))
        plain.append(surface)
        length += len(surface)
        position = match.end()
    plain.append(line[position:])
    return Example("".join(plain), intent, tuple(spans))


def _attributes(attrs: str, line: str) -> dict[str, Any]:
    try:
        data = json.loads("{" + attrs + "}")
    except json.JSONDecodeError as exc:
        raise TrainingDataError(f"annotation {{{attrs}}} is not valid JSON in {line!r}") from exc
    if not isinstance(data, dict):
        raise TrainingDataError(f"annotation {{{attrs}}} is not an object in {line!r}")
    return data


def _example_lines(examples: Any) -> list[str]:
    if isinstance(examples, str):
        lines = (line.strip() for line in examples.splitlines())
        return [line[1:].strip() for line in lines if line.startswith("-") and line[1:].strip()]
    if isinstance(examples, list):  # the extended form: a list of {"text": ..., "metadata": ...}
        return [str(item["text"]).strip() for item in examples if isinstance(item, dict) and item.get("text")]
    return []


def read_nlu(yaml_text: str, source: str = "<text>") -> NluData:
    """Rasa 3.x YAML training data → examples and synonyms (rules, stories, regexes and lookups are skipped)."""
    try:
        data = yaml.safe_load(yaml_text) or {}
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{source}: not valid YAML: {exc}") from exc
    out = NluData()
    if not isinstance(data, dict):
        return out
    for block in data.get("nlu") or []:
        if not isinstance(block, dict):
            continue
        if "intent" in block:
            for line in _example_lines(block.get("examples")):
                try:
                    example = parse_example(line, str(block["intent"]))
                except TrainingDataError as exc:
                    raise TrainingDataError(f"{source}: {exc}") from exc
                out.examples.append(example)
                for span in example.entities:
                    surface = example.text[span.start : span.end]
                    if span.value != surface:
                        out.synonyms[surface.lower()] = span.value
        elif "synonym" in block:
            for line in _example_lines(block.get("examples")):
                out.synonyms[line.lower()] = str(block["synonym"])
    return out


def normal_text(text: str) -> str:
    """How two example texts are compared: case and spacing do not count."""
    return " ".join(text.lower().split())


def normal_value(value: str) -> str:
    """How two entity values are compared: case, spacing and surrounding punctuation do not count."""
    return " ".join(str(value).casefold().split()).strip(" .,;:!?'\"()")


def split_unseen(training: Iterable[Example], heldout: Iterable[Example]) -> tuple[list[Example], list[Example]]:
    """The held-out examples whose text is not in the training data, and those that are (left out)."""
    seen = {normal_text(e.text) for e in training}
    unseen: list[Example] = []
    left_out: list[Example] = []
    for example in heldout:
        (left_out if normal_text(example.text) in seen else unseen).append(example)
    return unseen, left_out


def parse_from_json(data: Mapping[str, Any]) -> Parse:
    """Rasa's parse result (`/model/parse` or `assistant/rasa_parse.py`) → Parse."""
    intent = data.get("intent") or {}
    entities = tuple(
        PredictedEntity(
            entity=str(e.get("entity", "")),
            value=str(e.get("value", "")),
            start=int(e.get("start", 0)),
            end=int(e.get("end", 0)),
            extractor=str(e.get("extractor", "")),
        )
        for e in data.get("entities") or []
    )
    return Parse(str(intent.get("name") or ""), float(intent.get("confidence") or 0.0), entities)


# --- intents ---------------------------------------------------------------------------------------
def intent_metrics(gold: Sequence[str], predicted: Sequence[str], texts: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold intents, per-intent P/R/F1/support, and the confusions.

    An intent that is only ever predicted (nlu_fallback, or a wrong guess) has no support and is
    not averaged into macro-F1; its predictions still cost the true intent's recall.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    if not gold:
        raise ValueError("no examples to score")
    labels = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    per_intent = {
        label: {
            "precision": round(float(p), DIGITS),
            "recall": round(float(r), DIGITS),
            "f1": round(float(f), DIGITS),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), DIGITS),
        "macro_f1": round(float(sum(f1) / len(labels)), DIGITS),
        "per_intent": per_intent,
        "predicted_outside_gold": dict(Counter(p for p in predicted if p not in per_intent).most_common()),
        "confusions": confusions(gold, predicted, texts),
    }


def confusions(gold: Sequence[str], predicted: Sequence[str], texts: Sequence[str]) -> list[dict[str, Any]]:
    """Each (true → predicted) mistake with its count and up to three example texts, most frequent first."""
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for true, guess, text in zip(gold, predicted, texts, strict=True):
        if true != guess:
            examples[(true, guess)].append(text)
    ordered = sorted(examples.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        {"true": true, "predicted": guess, "count": len(found), "examples": found[:CONFUSION_EXAMPLES]}
        for (true, guess), found in ordered
    ]


def write_confusions(gold: Sequence[str], predicted: Sequence[str], texts: Sequence[str]) -> list[dict[str, str]]:
    """Examples where a write intent was read as another intent, or another intent as a write intent.

    Falling back (nlu_fallback) is not counted: the assistant then asks instead of acting.
    """
    return [
        {"text": text, "true": true, "predicted": guess}
        for true, guess, text in zip(gold, predicted, texts, strict=True)
        if true != guess and guess != FALLBACK_INTENT and (true in WRITE_INTENTS or guess in WRITE_INTENTS)
    ]


# --- entities --------------------------------------------------------------------------------------
def gold_value(span: Span, text: str, synonyms: Mapping[str, str]) -> str:
    """The value the model should produce: the annotated value, or the synonym the training data maps the text to."""
    surface = text[span.start : span.end]
    value = synonyms.get(surface.lower(), span.value) if span.value == surface else span.value
    return normal_value(value)


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 (= 2tp / (2tp + fp + fn)); a figure with nothing to count is None."""

    def ratio(num: int, den: int) -> float | None:
        return round(num / den, DIGITS) if den else None

    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "support": tp + fn,
        "predicted": tp + fp,
    }


def entity_metrics(
    examples: Sequence[Example], parses: Sequence[Parse], synonyms: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Entity precision/recall/F1 per DIET entity and micro over all, plus spaCy's entities counted.

    A predicted entity is correct when its name and normalised value equal those of a gold annotation
    of the same example not yet matched, and the two character spans overlap. Undefined figures
    (nothing annotated, nothing predicted) are None.
    """
    synonyms = synonyms or {}
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    spacy_found: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    for example, parse in zip(examples, parses, strict=True):
        gold = [(span, gold_value(span, example.text, synonyms)) for span in example.entities]
        unmatched = list(range(len(gold)))
        spurious: list[dict[str, Any]] = []
        for predicted in parse.entities:
            if predicted.extractor == SPACY_EXTRACTOR:
                spacy_found[predicted.entity] += 1
                continue
            if predicted.extractor not in SCORED_EXTRACTORS:
                continue
            value = normal_value(predicted.value)
            hit = next(
                (
                    i
                    for i in unmatched
                    if gold[i][0].entity == predicted.entity
                    and gold[i][1] == value
                    and predicted.start < gold[i][0].end
                    and gold[i][0].start < predicted.end
                ),
                None,
            )
            if hit is None:
                fp[predicted.entity] += 1
                spurious.append({"entity": predicted.entity, "value": predicted.value})
            else:
                tp[predicted.entity] += 1
                unmatched.remove(hit)
        for i in unmatched:
            fn[gold[i][0].entity] += 1
        if unmatched or spurious:
            missed = [{"entity": gold[i][0].entity, "value": gold[i][1]} for i in unmatched]
            errors.append({"text": example.text, "missed": missed, "spurious": spurious})
    names = sorted(set(tp) | set(fp) | set(fn))
    return {
        "micro": _prf(sum(tp.values()), sum(fp.values()), sum(fn.values())),
        "per_entity": {name: _prf(tp[name], fp[name], fn[name]) for name in names},
        "spacy_found": dict(sorted(spacy_found.items())),
        "errors": errors,
    }


# --- the baseline ----------------------------------------------------------------------------------
BASELINE_NAME = "TF-IDF word 1-2-grams + char_wb 2-5-grams, LogisticRegression"


def train_baseline(examples: Sequence[Example]) -> Pipeline:
    """A plain scikit-learn intent classifier trained on the same examples, to show what DIET adds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )
    model = Pipeline([("features", features), ("classifier", LogisticRegression(max_iter=2000, C=10.0))])
    model.fit([e.text for e in examples], [e.intent for e in examples])
    return model


def baseline_predict(model: Pipeline, texts: Sequence[str]) -> list[str]:
    return [str(label) for label in model.predict(list(texts))]


# --- the whole evaluation ----------------------------------------------------------------------------
def evaluate(
    training: NluData, unseen: Sequence[Example], parses: Sequence[Parse], left_out: int = 0
) -> dict[str, Any]:
    """The full report: the model's intents and entities on the unseen held-out examples, and the baseline's intents."""
    if len(unseen) != len(parses):
        raise ValueError(f"{len(unseen)} examples but {len(parses)} parses")
    texts = [e.text for e in unseen]
    gold = [e.intent for e in unseen]
    predicted = [p.intent for p in parses]
    baseline = train_baseline(training.examples)
    baseline_predicted = baseline_predict(baseline, texts)
    return {
        "examples": len(unseen),
        "left_out_seen_in_training": left_out,
        "training_examples": len(training.examples),
        "intents": len(set(gold)),
        "intent": intent_metrics(gold, predicted, texts),
        "entities": entity_metrics(unseen, parses, training.synonyms),
        "write_confusions": write_confusions(gold, predicted, texts),
        "baseline": {"model": BASELINE_NAME, **intent_metrics(gold, baseline_predicted, texts)},
        "errors": [
            {"text": e.text, "intent": e.intent, "predicted": p.intent, "confidence": round(p.confidence, DIGITS)}
            for e, p in zip(unseen, parses, strict=True)
            if e.intent != p.intent
        ],
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def summary_text(report: Mapping[str, Any], top: int = 5) -> str:
    """A few lines for a person: accuracy, macro-F1, entity F1 per entity, the baseline, the top confusions."""
    intent, entities, baseline = report["intent"], report["entities"], report["baseline"]
    micro = entities["micro"]
    lines = [
        f"held-out examples: {report['examples']} unseen ({report['left_out_seen_in_training']} left out: "
        f"also in training), {report['intents']} intents; training examples: {report['training_examples']}",
        f"intent accuracy {_pct(intent['accuracy'])}, macro-F1 {_pct(intent['macro_f1'])}",
        f"baseline ({baseline['model']}): accuracy {_pct(baseline['accuracy'])}, macro-F1 {_pct(baseline['macro_f1'])}",
        f"entities (DIET, micro): F1 {_pct(micro['f1'])}, precision {_pct(micro['precision'])}, "
        f"recall {_pct(micro['recall'])}, {micro['support']} annotated",
    ]
    for name, figures in entities["per_entity"].items():
        lines.append(
            f"  {name:<14} F1 {_pct(figures['f1']):>8}  ({figures['support']} annotated, {figures['predicted']} found)"
        )
    if entities["spacy_found"]:
        found = ", ".join(f"{label} {n}" for label, n in entities["spacy_found"].items())
        lines.append(f"spaCy found (not scored): {found}")
    if intent["confusions"]:
        lines.append("top confusions (true → predicted):")
        for c in intent["confusions"][:top]:
            lines.append(f"  {c['true']} → {c['predicted']}: {c['count']}  e.g. {c['examples'][0]!r}")
    lines.append(f"write-intent confusions: {len(report['write_confusions'])}")
    return "\n".join(lines)
