"""Sentiment of user turns on the held-out set (tests/nlu/sentiment_heldout.csv): our MiniLM + head against
the VADER lexicon baseline (accuracy, macro-F1, per-class F1, confusion matrices), then the speed of ours:
model load time, p50/p95 latency of one turn, throughput of batches of 32, and turns through SentimentService.

VADER's labels use its standard thresholds: compound ≥ 0.05 positive, ≤ −0.05 negative, else neutral.
`--cv` adds the 5-fold cross-validation on train.csv that chose the head's settings (it never reads the
held-out set). The head is trained first when train.csv or the encoder changed (`--retrain` forces it, to
time training).

    .venv/bin/python -m bench.sentiment [--heldout tests/nlu/sentiment_heldout.csv] [--cv] [--retrain]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.sentiment.model import LABELS, SentimentConfig, load_model, percentile  # noqa: E402
from assistant.sentiment.service import SentimentService  # noqa: E402
from assistant.sentiment.training import (  # noqa: E402
    HEAD_C,
    HEAD_CLASS_WEIGHT,
    TrainingSet,
    cross_validate,
    cv_group,
    embed_training_set,
    ensure_head,
    read_training_set,
)
from assistant.settings import Settings  # noqa: E402

HELDOUT = ROOT / "tests" / "nlu" / "sentiment_heldout.csv"
CV_GRID_C = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CV_GRID_WEIGHT: tuple[str | None, ...] = (None, "balanced")


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows: truth)."""
    per_class: dict[str, dict[str, float]] = {}
    for label in LABELS:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
    confusion = {t: {p: 0 for p in LABELS} for t in LABELS}
    for t, p in zip(truth, predicted, strict=True):
        confusion[t][p] += 1
    return {
        "accuracy": round(sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth), 4),
        "macro_f1": round(sum(c["f1"] for c in per_class.values()) / len(LABELS), 4),
        "per_class": per_class,
        "confusion": confusion,
    }


def vader_labels(texts: Sequence[str]) -> list[str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

    analyzer = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        compound = analyzer.polarity_scores(text)["compound"]
        out.append("positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral")
    return out


def run_cv(training: TrainingSet) -> dict[str, Any]:
    """The grouped-CV grid that chose the head's C and class weights, an RBF SVM for comparison, and a
    shuffled-label control."""
    from sklearn.metrics import accuracy_score, f1_score  # type: ignore[import-untyped]
    from sklearn.model_selection import GroupKFold, cross_val_predict  # type: ignore[import-untyped]
    from sklearn.svm import SVC  # type: ignore[import-untyped]

    x, texts, labels = training.embeddings, training.texts, training.labels
    grid = []
    for weight in CV_GRID_WEIGHT:
        for c in CV_GRID_C:
            sys.stderr.write(f"cv: C={c} class_weight={weight}\n")
            grid.append({"C": c, "class_weight": weight, **cross_validate(x, texts, labels, c, weight)})
    svc = cross_val_predict(SVC(C=4.0), x, labels, cv=GroupKFold(5), groups=[cv_group(t) for t in texts])
    shuffled = list(labels)
    random.Random(7).shuffle(shuffled)  # noqa: S311 - a control, not a secret
    return {
        "rows": len(labels),
        "folds": "5, grouped by the first three words (see training.cv_group)",
        "embed_seconds": round(training.embed_seconds, 1),
        "chosen": {"C": HEAD_C, "class_weight": HEAD_CLASS_WEIGHT},
        "grid": grid,
        "not_chosen_rbf_svm_C4": {
            "accuracy": round(float(accuracy_score(labels, svc)), 4),
            "macro_f1": round(float(f1_score(labels, svc, average="macro")), 4),
            "why_not": "needs its support vectors stored (megabytes) and a probability model; the linear head is "
            "a 25 kB JSON file",
        },
        "shuffled_labels": cross_validate(x, texts, shuffled),
    }


def speed(model: Any, texts: Sequence[str]) -> dict[str, Any]:
    """One turn at a time (p50/p95), then batches of 32."""
    singles = list(texts[:300])
    model.predict(singles[:5])  # warm-up
    latencies = []
    for text in singles:
        started = time.perf_counter()
        model.predict([text])
        latencies.append(time.perf_counter() - started)
    batches = [list(texts[i : i + 32]) for i in range(0, len(texts) - 31, 32)] or [list(texts)]
    started = time.perf_counter()
    for batch in batches:
        model.predict(batch)
    seconds = time.perf_counter() - started
    turns = sum(len(b) for b in batches)
    return {
        "single_turn": {
            "turns": len(latencies),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 95) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1),
        },
        "batch_32": {
            "batches": len(batches),
            "turns_per_second": round(turns / seconds, 1),
            "ms_per_batch": round(seconds / len(batches) * 1000, 1),
        },
    }


async def through_service(model: Any, texts: Sequence[str], concurrent: int) -> dict[str, Any]:
    """Turns arriving `concurrent` at a time at SentimentService: latency per turn including the queueing."""
    service = SentimentService(model)
    try:
        for start in range(0, len(texts), concurrent):
            await service.classify_many(list(texts[start : start + concurrent]))
        return {"concurrent": concurrent, "predict_calls": service.predict_calls, **service.latency()}
    finally:
        await service.aclose()


def table(report: dict[str, Any]) -> str:
    lines = ["| model | accuracy | macro-F1 | F1 neg / neu / pos |", "|---|---|---|---|"]
    for name in ("ours", "vader"):
        s = report["heldout"][name]
        f1 = " / ".join(f"{s['per_class'][label]['f1']:.3f}" for label in LABELS)
        lines.append(f"| {name} | {s['accuracy']:.3f} | {s['macro_f1']:.3f} | {f1} |")
    sp = report["speed"]
    lines.append("")
    lines.append(
        f"load {report['load_seconds']} s; one turn p50 {sp['single_turn']['p50_ms']} ms, "
        f"p95 {sp['single_turn']['p95_ms']} ms; batches of 32: {sp['batch_32']['turns_per_second']} turns/s"
    )
    for s in report.get("service", []):
        lines.append(
            f"service, {s['concurrent']} concurrent: p50 {s['p50_seconds'] * 1000:.1f} ms, "
            f"p95 {s['p95_seconds'] * 1000:.1f} ms, {s['turns']} turns in {s['predict_calls']} predict calls"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--heldout", type=Path, default=HELDOUT)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"sentiment-{today}.json")
    parser.add_argument("--head-dir", type=Path, default=None, help="default: <models dir>/sentiment")
    parser.add_argument("--cv", action="store_true", help="add the cross-validation grid on train.csv")
    parser.add_argument("--retrain", action="store_true", help="train the head even if it is up to date")
    args = parser.parse_args()
    settings = Settings()
    config = SentimentConfig(head_dir=args.head_dir or settings.models_dir / "sentiment")
    train_texts, train_labels = read_training_set(config.train_csv)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "threads": config.threads,
        "train": {"rows": len(train_texts), "per_label": {label: train_labels.count(label) for label in LABELS}},
    }
    training = None
    if args.cv:
        training = embed_training_set(config)
        report["cv"] = run_cv(training)
    started = time.perf_counter()
    head, trained = ensure_head(config, force=args.retrain, training_set=training)
    stored = json.loads(head.read_text(encoding="utf-8"))
    report["head"] = {
        "file": head.name,
        "bytes": head.stat().st_size,
        "trained_now": trained,
        "ensure_seconds": round(time.perf_counter() - started, 1),
        "recipe": stored.get("recipe"),
        "train_seconds": stored.get("seconds"),
    }
    started = time.perf_counter()
    model = load_model(config, train_if_needed=False)
    report["load_seconds"] = round(time.perf_counter() - started, 2)
    if not args.heldout.exists():
        sys.stdout.write(f"no held-out set at {args.heldout}; wrote the training figures only\n")
    else:
        texts, truth = read_training_set(args.heldout)
        ours = [s.label for s in model.predict(texts)]
        vader = vader_labels(texts)
        report["heldout"] = {
            "file": str(args.heldout.relative_to(ROOT)) if args.heldout.is_relative_to(ROOT) else str(args.heldout),
            "rows": len(texts),
            "per_label": {label: truth.count(label) for label in LABELS},
            "ours": scores(truth, ours),
            "vader": scores(truth, vader),
            "ours_wrong": [
                {"text": t, "label": y, "predicted": p} for t, y, p in zip(texts, truth, ours, strict=True) if y != p
            ],
        }
        report["speed"] = speed(model, texts)
        report["service"] = [asyncio.run(through_service(model, texts[:256], n)) for n in (1, 16)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if "heldout" in report:
        sys.stdout.write(table(report) + "\n")
    if "cv" in report:
        best = max(report["cv"]["grid"], key=lambda g: g["macro_f1"])
        sys.stdout.write(f"cv best: {best}\ncv shuffled labels: {report['cv']['shuffled_labels']}\n")
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
