"""`crm-assistant forecast` end to end on a SQLite file: the table, JSON, backtest and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.settings import Settings, open_store
from crm_backend.demo import seed_demo
from crm_backend.migrate import upgrade


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CRM_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    settings = Settings()
    store = open_store(settings)
    upgrade(store.engine)
    seed_demo(store)
    store.dispose()
    return settings


def test_forecast_prints_json_as_the_user_sees_it(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--method", "weighted", "--by", "owner", "--as", "carlos", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {g["label"] for g in result["groups"]} <= {"Carlos Mendes"}
    assert result["methods"] == ["weighted"]


def test_backtest_prints_the_mape_table(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--backtest", "--periods", "3", "--period-type", "month"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Backtest over 3 months in USD") and "MAPE %" in out


def test_bad_period_is_a_clear_error(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--period", "2026-Q9"]) == 2
    assert "period: give a period as 2026-Q3" in capsys.readouterr().err
