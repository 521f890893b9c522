from __future__ import annotations

import pytest

from assistant.nlu_eval import (
    Example,
    NluData,
    Parse,
    PredictedEntity,
    Span,
    TrainingDataError,
    baseline_predict,
    confusions,
    entity_metrics,
    evaluate,
    intent_metrics,
    parse_example,
    parse_from_json,
    read_nlu,
    split_unseen,
    summary_text,
    train_baseline,
    write_confusions,
)

TRAINING_YAML = """
version: "3.1"
nlu:
- intent: update_deal
  examples: |
    - move the [Nimbus](record) deal to [negotiating]{"entity": "stage", "value": "Negotiation"}
    - we [won]{"entity": "stage", "value": "Closed Won"} [acme corp](record)!
    - bump it to proposal
- intent: greet
  examples: |
    - hi there
    -   hello   bot
- synonym: EUR
  examples: |
    - euros
    - Euro
- regex: account_number
  examples: |
    - \\d{10}
- lookup: city
  examples: |
    - Paris
rules:
- rule: not training data for the NLU
  steps:
  - intent: greet
"""


def diet(entity: str, value: str, start: int, end: int) -> PredictedEntity:
    return PredictedEntity(entity, value, start, end, "DIETClassifier")


# --- the reader ------------------------------------------------------------------------------------------
def test_reader_strips_round_bracket_annotations_and_keeps_offsets() -> None:
    example = parse_example("log a call with [Dana Smith](record) at [Nimbus Labs](record) today", "log_activity")
    assert example.text == "log a call with Dana Smith at Nimbus Labs today"
    assert example.intent == "log_activity"
    assert example.entities == (Span("record", "Dana Smith", 16, 26), Span("record", "Nimbus Labs", 30, 41))
    assert [example.text[s.start : s.end] for s in example.entities] == ["Dana Smith", "Nimbus Labs"]


def test_reader_takes_the_normalised_value_from_json_annotations() -> None:
    line = (
        'what is 12,000 [euros]{"entity": "currency", "value": "EUR"} in [dollars]{"entity":"currency","value":"USD"}?'
    )
    example = parse_example(line)
    assert example.text == "what is 12,000 euros in dollars?"
    assert example.entities == (Span("currency", "EUR", 15, 20), Span("currency", "USD", 24, 31))
    assert example.text[15:20] == "euros" and example.text[24:31] == "dollars"


def test_reader_accepts_the_old_entity_colon_value_form_and_json_without_value() -> None:
    example = parse_example('[oppty](record_type:deal) for [Acme]{"entity": "record"}')
    assert example.text == "oppty for Acme"
    assert example.entities == (Span("record_type", "deal", 0, 5), Span("record", "Acme", 10, 14))


def test_reader_rejects_an_annotation_that_is_not_json() -> None:
    with pytest.raises(TrainingDataError, match="not valid JSON"):
        parse_example("show deals in [negotiation]{stage}")


def test_read_nlu_reads_intents_and_synonyms_and_skips_the_rest() -> None:
    data = read_nlu(TRAINING_YAML, "nlu.yml")
    assert [(e.text, e.intent) for e in data.examples] == [
        ("move the Nimbus deal to negotiating", "update_deal"),
        ("we won acme corp!", "update_deal"),
        ("bump it to proposal", "update_deal"),
        ("hi there", "greet"),
        ("hello   bot", "greet"),
    ]
    assert data.examples[1].entities == (Span("stage", "Closed Won", 3, 6), Span("record", "acme corp", 7, 16))
    assert data.synonyms == {"negotiating": "Negotiation", "won": "Closed Won", "euros": "EUR", "euro": "EUR"}


def test_read_nlu_reads_the_extended_example_form_and_names_the_file_on_errors() -> None:
    extended = 'nlu:\n- intent: greet\n  examples:\n  - text: "hey [Raj](record)"\n    metadata: {sentiment: ok}\n'
    assert read_nlu(extended).examples == [Example("hey Raj", "greet", (Span("record", "Raj", 4, 7),))]
    with pytest.raises(TrainingDataError, match=r"heldout\.yml"):
        read_nlu("nlu:\n- intent: x\n  examples: |\n    - [a]{broken}\n", "heldout.yml")
    assert read_nlu("").examples == []


def test_split_unseen_leaves_out_texts_seen_in_training_ignoring_case_and_spacing() -> None:
    training = read_nlu(TRAINING_YAML).examples
    heldout = [Example("Hello bot", "greet"), Example("hi there friend", "greet"), Example("HI  THERE", "greet")]
    unseen, left_out = split_unseen(training, heldout)
    assert [e.text for e in unseen] == ["hi there friend"]
    assert [e.text for e in left_out] == ["Hello bot", "HI  THERE"]


def test_parse_from_json_reads_rasas_parse_result() -> None:
    parse = parse_from_json(
        {
            "text": "the Nimbus deal",
            "intent": {"name": "deal_status", "confidence": 0.93},
            "entities": [
                {"entity": "record", "value": "Nimbus", "start": 4, "end": 10, "extractor": "DIETClassifier"},
                {"entity": "ORG", "value": "Nimbus", "start": 4, "end": 10, "extractor": "SpacyEntityExtractor"},
            ],
        }
    )
    assert parse == Parse(
        "deal_status",
        0.93,
        (diet("record", "Nimbus", 4, 10), PredictedEntity("ORG", "Nimbus", 4, 10, "SpacyEntityExtractor")),
    )
    assert parse_from_json({"intent": None, "entities": None}) == Parse("", 0.0)


# --- intent metrics --------------------------------------------------------------------------------------
def test_intent_metrics_on_a_hand_made_prediction() -> None:
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "b"]
    metrics = intent_metrics(gold, predicted, ["t1", "t2", "t3", "t4"])
    assert metrics["accuracy"] == 0.75
    assert metrics["per_intent"] == {
        "a": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "b": {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2},
    }
    assert metrics["macro_f1"] == 0.7333  # (2/3 + 4/5) / 2
    assert metrics["confusions"] == [{"true": "a", "predicted": "b", "count": 1, "examples": ["t2"]}]


def test_fallback_predictions_cost_recall_but_are_not_averaged_as_an_intent() -> None:
    metrics = intent_metrics(["a", "a", "b"], ["a", "nlu_fallback", "b"], ["x", "y", "z"])
    assert set(metrics["per_intent"]) == {"a", "b"}
    assert metrics["per_intent"]["a"]["recall"] == 0.5
    assert metrics["macro_f1"] == round((2 / 3 + 1.0) / 2, 4)
    assert metrics["predicted_outside_gold"] == {"nlu_fallback": 1}


def test_confusions_are_most_frequent_first_with_at_most_three_examples() -> None:
    gold = ["a"] * 4 + ["b", "c", "c"]
    predicted = ["b"] * 4 + ["a", "a", "c"]
    found = confusions(gold, predicted, [f"t{i}" for i in range(7)])
    assert found == [
        {"true": "a", "predicted": "b", "count": 4, "examples": ["t0", "t1", "t2"]},
        {"true": "b", "predicted": "a", "count": 1, "examples": ["t4"]},
        {"true": "c", "predicted": "a", "count": 1, "examples": ["t5"]},
    ]


def test_write_confusions_count_write_intents_either_way_but_not_fallbacks() -> None:
    gold = ["create_task", "list_open_deals", "undo", "greet", "update_deal"]
    predicted = ["my_day", "update_deal", "nlu_fallback", "thanks", "update_deal"]
    assert write_confusions(gold, predicted, ["a", "b", "c", "d", "e"]) == [
        {"text": "a", "true": "create_task", "predicted": "my_day"},
        {"text": "b", "true": "list_open_deals", "predicted": "update_deal"},
    ]


# --- entity metrics --------------------------------------------------------------------------------------
def test_entity_metrics_count_wrong_values_and_non_overlapping_spans_as_errors() -> None:
    examples = [
        parse_example('move [Acme](record) to [negotiation]{"entity": "stage", "value": "Negotiation"}'),
        parse_example("the deal at [Globex](record)"),
    ]
    assert examples[1].entities == (Span("record", "Globex", 12, 18),)
    parses = [
        Parse(
            "update_deal",
            0.9,
            (
                diet("record", "acme", 5, 9),  # right entity, value equal but for case, same span: correct
                diet("stage", "Proposal", 13, 24),  # right span, wrong value: one false positive, one miss
                PredictedEntity("ORG", "Acme", 5, 9, "SpacyEntityExtractor"),  # counted, not scored
                PredictedEntity("record", "Acme", 5, 9, "RegexEntityExtractor"),  # not DIET: ignored
            ),
        ),
        Parse("list_open_deals", 0.8, (diet("record", "Globex", 0, 6),)),  # right value, span elsewhere
    ]
    metrics = entity_metrics(examples, parses)
    assert metrics["per_entity"] == {
        "record": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2},
        "stage": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1},
    }
    assert metrics["micro"] == {"precision": 0.3333, "recall": 0.3333, "f1": 0.3333, "support": 3, "predicted": 3}
    assert metrics["spacy_found"] == {"ORG": 1}
    assert [e["text"] for e in metrics["errors"]] == [examples[0].text, examples[1].text]
    assert metrics["errors"][0]["missed"] == [{"entity": "stage", "value": "negotiation"}]
    assert metrics["errors"][0]["spurious"] == [{"entity": "stage", "value": "Proposal"}]


def test_entity_matches_each_gold_annotation_once_and_accepts_the_synonym_mappers_result() -> None:
    example = parse_example("convert 50 [quid](currency) to [dollars](currency) for [Acme](record)")
    parses = [
        Parse(
            "convert_currency",
            0.9,
            (
                PredictedEntity("currency", "GBP", 11, 15, "EntitySynonymMapper"),
                diet("currency", "USD", 19, 26),
                diet("record", "Acme", 31, 35),
                diet("record", "Acme", 31, 35),  # the same annotation found twice: the second is spurious
            ),
        )
    ]
    metrics = entity_metrics([example], parses, synonyms={"quid": "GBP", "dollars": "USD"})
    assert metrics["per_entity"]["currency"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 2,
        "predicted": 2,
    }
    assert metrics["per_entity"]["record"]["precision"] == 0.5
    assert metrics["per_entity"]["record"]["recall"] == 1.0


def test_entity_figures_are_undefined_when_nothing_is_annotated_or_found() -> None:
    metrics = entity_metrics([Example("hi", "greet")], [Parse("greet", 1.0)])
    assert metrics["micro"] == {"precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0}
    assert metrics["per_entity"] == {} and metrics["errors"] == []


# --- baseline and the whole report -----------------------------------------------------------------------
TINY = [
    *(Example(t, "greet") for t in ["hi", "hello", "hey there", "good morning", "hiya"]),
    *(
        Example(t, "list_open_deals")
        for t in ["show my deals", "my open deals", "what is in my pipeline", "open deals"]
    ),
    *(Example(t, "goodbye") for t in ["bye", "see you", "goodbye", "bye bye", "talk later"]),
]


def test_baseline_trains_and_predicts_on_a_tiny_set() -> None:
    model = train_baseline(TINY)
    assert baseline_predict(model, ["show me my open deals", "hello there", "bye now"]) == [
        "list_open_deals",
        "greet",
        "goodbye",
    ]


def test_evaluate_reports_model_entities_baseline_and_a_readable_summary() -> None:
    training = NluData(examples=list(TINY))
    unseen = [Example("show me my deals", "list_open_deals"), Example("hey hello", "greet"), Example("cya", "goodbye")]
    parses = [Parse("list_open_deals", 0.9), Parse("greet", 0.8), Parse("greet", 0.4)]
    report = evaluate(training, unseen, parses, left_out=2)
    assert report["examples"] == 3 and report["left_out_seen_in_training"] == 2
    assert report["training_examples"] == len(TINY) and report["intents"] == 3
    assert report["intent"]["accuracy"] == 0.6667
    assert report["errors"] == [{"text": "cya", "intent": "goodbye", "predicted": "greet", "confidence": 0.4}]
    assert report["baseline"]["model"].startswith("TF-IDF")
    assert set(report["baseline"]["per_intent"]) == {"list_open_deals", "greet", "goodbye"}
    text = summary_text(report)
    assert "intent accuracy 66.7 %" in text
    assert "goodbye → greet: 1" in text
    with pytest.raises(ValueError, match="3 examples but 2 parses"):
        evaluate(training, unseen, parses[:2])
