"""The trained model on generated history: a real signal is learned, a shuffled one is not, the
split is by time, a worse model never replaces a better one, and scores blend rules and model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_backend.models.automation import EntityType
from crm_backend.models.deals import Deal
from crm_backend.scoring import engine, history, model
from crm_backend.store import Store
from tests.conftest import Demo
from tests.unit.engines.scoring.conftest import create, score_of

TODAY = dt.date(2026, 6, 30)
AUC_FLOOR = 0.6  # the generated effects give ~0.7; labels without signal give ~0.5


@pytest.fixture
def with_history(demo: Demo) -> Demo:
    history.seed_history(demo.store, leads=1200, deals=800, today=TODAY, seed=5)
    return demo


def dataset(store: Store, etype: EntityType) -> model.Dataset:
    with store.unit_of_work(None, "cli", read_only=True) as uow:
        return model.load_dataset(uow, etype)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_lead_model_learns_the_generated_signal_and_shuffled_labels_do_not(with_history: Demo, tmp_path: Path) -> None:
    data = dataset(with_history.store, EntityType.LEAD)
    real = model.train(data, EntityType.LEAD, tmp_path / "real")
    control = model.train(model.shuffled(data), EntityType.LEAD, tmp_path / "control")
    assert real.metrics["roc_auc"] > AUC_FLOOR
    assert control.metrics["roc_auc"] < AUC_FLOOR
    for name in ("precision", "recall", "f1"):
        assert 0 <= real.metrics[name] <= 1
    entry = json.loads((tmp_path / "real" / "lead" / "current.json").read_text())
    assert entry["version"] == real.version and entry["metrics"]["roc_auc"] == real.metrics["roc_auc"]
    assert (tmp_path / "real" / "lead" / entry["file"]).is_file()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_deal_model_learns_and_gives_win_probabilities(with_history: Demo, tmp_path: Path) -> None:
    data = dataset(with_history.store, EntityType.DEAL)
    result = model.train(data, EntityType.DEAL, tmp_path)
    assert result.promoted and result.metrics["roc_auc"] > AUC_FLOOR
    with_history.store.models_dir = tmp_path
    with with_history.store.unit_of_work(None, "system", read_only=True) as uow:
        deals = list(uow.session.scalars(select(Deal).order_by(Deal.id).limit(20)))
        found = model.deal_win_probabilities(uow, deals)
        ids = {d.id for d in deals}
    assert set(found) == ids
    assert all(p is not None and 0 < p < 1 for p in found.values())
    with_history.store.models_dir = None
    with with_history.store.unit_of_work(None, "system", read_only=True) as uow:
        deals = list(uow.session.scalars(select(Deal).order_by(Deal.id).limit(3)))
        assert set(model.deal_win_probabilities(uow, deals).values()) == {None}


def test_split_is_by_time_newest_records_held_out() -> None:
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    data = model.Dataset(
        ids=list(range(8)),
        features=[{"x": float(i)} for i in range(8)],
        labels=[0, 1] * 4,
        created=[base + dt.timedelta(days=i) for i in range(8)],
    )
    train, test, cutoff = model.time_split(data)
    assert max(train.created) < min(test.created) == cutoff
    assert len(test.ids) == 2


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_worse_model_does_not_replace_a_better_one_unless_forced(with_history: Demo, tmp_path: Path) -> None:
    data = dataset(with_history.store, EntityType.LEAD)
    good = model.train(data, EntityType.LEAD, tmp_path)
    worse = model.train(model.shuffled(data, seed=3), EntityType.LEAD, tmp_path)
    current = json.loads((tmp_path / "lead" / "current.json").read_text())
    assert good.promoted and not worse.promoted and worse.path is None
    assert current["version"] == good.version
    assert "kept" in worse.reason
    forced = model.train(model.shuffled(data, seed=3), EntityType.LEAD, tmp_path, force=True)
    assert forced.promoted
    assert json.loads((tmp_path / "lead" / "current.json").read_text())["version"] == forced.version


def test_too_little_history_says_so_and_writes_nothing(demo: Demo, tmp_path: Path) -> None:
    data = dataset(demo.store, EntityType.DEAL)  # the demo's 10 deals
    with pytest.raises(model.NotEnoughHistory, match="rules alone"):
        model.train(data, EntityType.DEAL, tmp_path)
    assert not (tmp_path / "deal" / "current.json").exists()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_scores_blend_rules_and_model_with_the_documented_weights(with_history: Demo, tmp_path: Path) -> None:
    model.train(dataset(with_history.store, EntityType.LEAD), EntityType.LEAD, tmp_path)
    with_history.store.models_dir = tmp_path
    create(
        with_history,
        "scoring-rules",
        {
            "name": "Referral",
            "entity_type": "lead",
            "conditions": {"field": "source", "op": "eq", "value": "Referral"},
            "points": 40,
        },
    )
    rid = create(with_history, "leads", {"last_name": "New", "source": "Referral", "employees": 300}, user="alice")
    row = score_of(with_history.store, "lead", rid)
    assert row is not None and row.model_probability is not None and row.rule_score == 40
    expected = round(engine.RULE_WEIGHT * 40 + engine.MODEL_WEIGHT * 100 * row.model_probability)
    assert row.score == expected
    assert row.explanation["model"]["version"] == row.model_version
    assert row.explanation["blend"] == {"rule_weight": engine.RULE_WEIGHT, "model_weight": engine.MODEL_WEIGHT}


def test_history_is_reproducible_and_carries_the_documented_effects() -> None:
    a = history.generate(seed=2, leads=3000, deals=10, today=TODAY, owners=[1, 2])
    b = history.generate(seed=2, leads=3000, deals=10, today=TODAY, owners=[1, 2])
    assert a.leads == b.leads

    def rate(source: str) -> float:
        closed = [x for x in a.leads if x["source"] == source and x["status"] in ("Converted", "Lost")]
        return sum(x["status"] == "Converted" for x in closed) / len(closed)

    assert rate("Referral") > rate("Website") > rate("Cold Call")
    dates = [x["created_at"] for x in a.leads]
    assert (max(dates) - min(dates)).days > 700  # spread over more than two years
