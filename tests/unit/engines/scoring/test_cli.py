"""The scoring commands end to end on a SQLite file: seed history, train, score everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from assistant.cli import main
from crm_backend.demo import seed_demo
from crm_backend.migrate import upgrade
from crm_backend.models.automation import EntityScore, EntityType, ScoringRuleSet
from crm_backend.store import Store


def test_seed_history_train_and_score_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    store = Store.from_url(url)
    upgrade(store.engine)
    seed_demo(store)
    store.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CRM_VAR_DIR", str(tmp_path / "var"))
    assert main(["seed-history", "--leads", "1000", "--deals", "600"]) == 0
    assert main(["train-scoring", "--entity", "lead"]) == 0
    out = capsys.readouterr().out
    assert "lead: ROC-AUC" in out and "now current" in out
    registry = json.loads((tmp_path / "var" / "models" / "scoring" / "lead" / "current.json").read_text())
    assert registry["metrics"]["roc_auc"] > 0.5
    assert main(["score", "--all", "--entity", "lead"]) == 0
    assert "scored 1000 leads" in capsys.readouterr().out
    store = Store.from_url(url)
    try:
        with store.unit_of_work(None, "cli", read_only=True) as uow:
            with_model = uow.session.scalar(
                select(func.count(EntityScore.id)).where(
                    EntityScore.entity_type == EntityType.LEAD, EntityScore.model_version == registry["version"]
                )
            )
            default_sets = uow.session.scalar(select(func.count(ScoringRuleSet.id)).where(ScoringRuleSet.is_default))
    finally:
        store.dispose()
    assert with_model == 1000
    assert default_sets == 2  # leads and deals


def test_score_without_all_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_VAR_DIR", str(tmp_path / "var"))
    assert main(["score"]) == 2
