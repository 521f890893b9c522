from __future__ import annotations

import stat
from pathlib import Path

from assistant.settings import Settings


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    s = Settings(CRM_VAR_DIR=tmp_path)
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    assert (s.rasa_port, s.action_server_port, s.gateway_port) == (5005, 5055, 8080)
    assert s.bind_host == "127.0.0.1"


def test_secret_is_created_once_private_and_shared(tmp_path: Path) -> None:
    first = Settings(CRM_VAR_DIR=tmp_path).secret()
    assert Settings(CRM_VAR_DIR=tmp_path).secret() == first
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert len(first) == 64


def test_explicit_secret_wins_and_rasa_token_is_derived_not_equal(tmp_path: Path) -> None:
    s = Settings(CRM_VAR_DIR=tmp_path, ASSISTANT_SECRET="from-env")
    assert s.secret() == "from-env"
    assert not (tmp_path / "secret").exists()
    assert s.rasa_api_token() not in ("from-env", "")


def test_children_get_telemetry_off_and_the_action_endpoint(tmp_path: Path) -> None:
    env = Settings(CRM_VAR_DIR=tmp_path, ACTION_SERVER_PORT=6111).child_environment()
    assert env["RASA_TELEMETRY_ENABLED"] == "false"
    assert env["ACTION_ENDPOINT_URL"] == "http://127.0.0.1:6111/webhook"


def test_environment_variables_configure_settings(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/crm")
    monkeypatch.setenv("GATEWAY_PORT", "9090")
    s = Settings(CRM_VAR_DIR=tmp_path)
    assert s.effective_database_url == "postgresql+psycopg://u@127.0.0.1/crm"
    assert s.gateway_port == 9090
