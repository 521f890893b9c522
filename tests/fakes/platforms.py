"""Settings for a whole local stack whose Slack and Telegram channels talk to the fake platforms
(used by the e2e suite and by bench/channels.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.settings import Settings
from assistant.stack import free_port
from tests.fakes.server import FakeServer

SLACK_SIGNING_SECRET = "local-slack-signing-secret"
TELEGRAM_WEBHOOK_SECRET = "local-telegram-secret"
SUPPORT_CHANNEL = "CSUPPORT01"  # the Slack channel where handoffs are announced


def stack_settings(var_dir: Path, slack: FakeServer, telegram: FakeServer, **extra: Any) -> Settings:
    """Free ports, a SQLite database in `var_dir`, both chat channels on and pointed at the fakes."""
    values: dict[str, Any] = {
        "CRM_VAR_DIR": var_dir,
        "DATABASE_URL": f"sqlite:///{var_dir / 'crm.sqlite3'}",
        "RASA_PORT": free_port(),
        "ACTION_SERVER_PORT": free_port(),
        "GATEWAY_PORT": free_port(),
        "ASSISTANT_SECRET": "local-" + var_dir.name,
        "SLACK_API_URL": f"{slack.url}/api/",
        "SLACK_BOT_TOKEN": "xoxb-local",
        "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
        "SLACK_SUPPORT_CHANNEL": SUPPORT_CHANNEL,
        "TELEGRAM_API_URL": f"{telegram.url}/bot",
        "TELEGRAM_BOT_TOKEN": "123456:local",
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_WEBHOOK_SECRET,
        "TELEGRAM_MODE": "webhook",
    }
    return Settings(**{**values, **extra})
