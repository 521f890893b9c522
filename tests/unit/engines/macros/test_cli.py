"""`crm-assistant macro list|run|runs` against a real database (the demo's SQLite file)."""

from __future__ import annotations

import pytest

from assistant.cli import main
from crm_backend.models.deals import Deal
from tests.conftest import Demo
from tests.unit.engines.macros.conftest import MakeMacro, deal_id, macro_runs

ACME = "Acme - Fleet telematics"


@pytest.fixture
def cli_db(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    if demo.store.engine.dialect.name != "sqlite":
        pytest.skip("the CLI test points the settings at the demo's SQLite file")
    monkeypatch.setenv("DATABASE_URL", demo.store.engine.url.render_as_string(hide_password=False))
    return demo


def test_macro_run_dry_run_and_runs(cli_db: Demo, make_macro: MakeMacro, capsys: pytest.CaptureFixture[str]) -> None:
    did = deal_id(cli_db, ACME)
    mid = make_macro(name="Nudge", actions=[{"type": "set_field", "field": "probability", "value": 80}])

    assert main(["macro", "list", "--as", "alice"]) == 0
    assert "Nudge" in capsys.readouterr().out

    assert main(["macro", "run", "nudge", "--record", str(did), "--dry-run", "--as", "alice"]) == 0
    out = capsys.readouterr().out
    assert f"deal:{did}.probability: 70 -> 80" in out and "dry run" in out
    with cli_db.store.unit_of_work() as uow:
        assert uow.session.get(Deal, did).probability == 70  # type: ignore[union-attr]

    assert main(["macro", "run", str(mid), "--record", str(did), "--as", "alice"]) == 0
    assert "succeeded" in capsys.readouterr().out
    with cli_db.store.unit_of_work() as uow:
        assert uow.session.get(Deal, did).probability == 80  # type: ignore[union-attr]

    assert main(["macro", "runs", "Nudge", "--as", "alice"]) == 0
    assert "2 run(s)" in capsys.readouterr().out
    assert len(macro_runs(cli_db, mid)) == 2


def test_macro_run_on_an_unseen_record_is_refused(
    cli_db: Demo, make_macro: MakeMacro, capsys: pytest.CaptureFixture[str]
) -> None:
    bobs = deal_id(cli_db, "Globex - Data warehouse")
    make_macro(name="Nudge", actions=[{"type": "set_field", "field": "probability", "value": 80}])
    assert main(["macro", "run", "Nudge", "--record", str(bobs), "--as", "alice"]) == 2
    assert "No deal with id" in capsys.readouterr().err
