"""One settings object for the whole service, read from the environment (and an optional `.env`).

Every process (gateway, action server, supervisor, CLI) builds its settings here and passes
them down; no other module reads `os.environ`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from crm_backend.store import Store

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration; every field has a default that works for `make run`."""

    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    project_root: Path = Field(default=PROJECT_ROOT, alias="CRM_PROJECT_ROOT")
    var_dir: Path = Field(default=PROJECT_ROOT / "var", alias="CRM_VAR_DIR")
    database_url: str = Field(default="", alias="DATABASE_URL")

    bind_host: str = Field(default="127.0.0.1", alias="BIND_HOST")
    rasa_port: int = Field(default=5005, alias="RASA_PORT", ge=1, le=65535)
    action_server_port: int = Field(default=5055, alias="ACTION_SERVER_PORT", ge=1, le=65535)
    gateway_port: int = Field(default=8080, alias="GATEWAY_PORT", ge=1, le=65535)

    rasa_venv: Path = Field(default=PROJECT_ROOT / ".venv-rasa", alias="RASA_VENV")
    models_dir: Path = Field(default=PROJECT_ROOT / "models", alias="RASA_MODELS_DIR")
    rasa_timeout_seconds: float = Field(default=30.0, alias="RASA_TIMEOUT_SECONDS", gt=0)
    health_timeout_seconds: float = Field(default=2.0, alias="HEALTH_TIMEOUT_SECONDS", gt=0)
    startup_timeout_seconds: float = Field(default=240.0, alias="STARTUP_TIMEOUT_SECONDS", gt=0)

    max_message_chars: int = Field(default=2000, alias="MAX_MESSAGE_CHARS", ge=1)
    # How long after a confirmed assistant write "undo that" can still revert it.
    undo_window_minutes: int = Field(default=30, alias="ASSISTANT_UNDO_MINUTES", ge=1, le=7 * 24 * 60)
    assistant_secret: SecretStr | None = Field(default=None, alias="ASSISTANT_SECRET")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")

    # The scheduler (reminders, recurring activities, notification delivery) runs inside the gateway.
    scheduler_enabled: bool = Field(default=True, alias="SCHEDULER_ENABLED")
    scheduler_interval_seconds: float = Field(default=5.0, alias="SCHEDULER_INTERVAL_SECONDS", gt=0, le=3600)
    recurrence_horizon_days: int = Field(default=30, alias="RECURRENCE_HORIZON_DAYS", ge=1, le=366)

    # Channels (each is off until its credentials are set). The API URLs are settings so that tests
    # point the official clients at local fake servers; every platform call times out.
    channel_timeout_seconds: float = Field(default=10.0, alias="CHANNEL_TIMEOUT_SECONDS", gt=0, le=120)
    link_code_minutes: int = Field(default=15, alias="LINK_CODE_MINUTES", ge=1, le=24 * 60)
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")  # Socket Mode
    slack_socket_mode: bool = Field(default=False, alias="SLACK_SOCKET_MODE")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # A channel (id) where new handoffs are announced, one thread per ticket; agents answer in the thread.
    slack_support_channel: str | None = Field(default=None, alias="SLACK_SUPPORT_CHANNEL")
    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_mode: str = Field(default="webhook", alias="TELEGRAM_MODE", pattern="^(webhook|polling)$")
    telegram_api_url: str = Field(default="https://api.telegram.org/bot", alias="TELEGRAM_API_URL")
    # The website widget: origins allowed to embed it ("" = only pages the gateway serves itself),
    # and a per-session message limit.
    # Chat platforms where a private chat with an account not linked to a CRM user talks to the assistant
    # as a prospect (like a website visitor) instead of only getting the linking steps. Slack is left out
    # by default: a workspace's members are colleagues who should link their account.
    prospect_channels: str = Field(default="telegram", alias="PROSPECT_CHANNELS", pattern=r"^[a-z, ]*$")
    widget_allowed_origins: str = Field(default="", alias="WIDGET_ALLOWED_ORIGINS")
    widget_messages_per_minute: int = Field(default=20, alias="WIDGET_MESSAGES_PER_MINUTE", ge=1, le=600)
    widget_cookie_secure: bool = Field(default=False, alias="WIDGET_COOKIE_SECURE")

    # Voice: speech to text (Vosk when an English Vosk model is configured, else the bundled
    # faster-whisper tiny.en), text to speech (pyttsx3 driving espeak-ng), and the limits on audio in.
    voice_engine: str = Field(default="auto", alias="VOICE_ENGINE", pattern="^(auto|vosk|whisper)$")
    vosk_model_path: Path | None = Field(default=None, alias="VOSK_MODEL_PATH")
    vosk_grammar: bool = Field(default=True, alias="VOSK_GRAMMAR")  # record names as a Vosk phrase list
    whisper_model_path: Path | None = Field(default=None, alias="WHISPER_MODEL_PATH")  # default: the bundled tiny.en
    voice_min_confidence: float = Field(default=0.35, alias="VOICE_MIN_CONFIDENCE", ge=0, le=1)
    voice_max_bytes: int = Field(default=10 * 1024 * 1024, alias="VOICE_MAX_BYTES", ge=1024)
    voice_max_seconds: float = Field(default=60.0, alias="VOICE_MAX_SECONDS", gt=0, le=600)
    tts_voice: str = Field(default="gmw/en-us", alias="TTS_VOICE")
    tts_rate: int = Field(default=175, alias="TTS_RATE", ge=80, le=400)
    # espeak-ng's command renders replies by default (pyttsx3 2.99 races espeak-ng when rendering to a
    # file, see docs/voice-speech.md); pyttsx3 stays available.
    tts_backend: str = Field(default="auto", alias="TTS_BACKEND", pattern="^(auto|espeak-ng|pyttsx3)$")

    # Sentiment on every user turn and the human handoff it can trigger.
    sentiment_enabled: bool = Field(default=True, alias="SENTIMENT_ENABLED")
    sentiment_model_path: Path | None = Field(default=None, alias="SENTIMENT_MODEL_PATH")  # any HF classifier dir
    handoff_negative_turns: int = Field(default=3, alias="HANDOFF_NEGATIVE_TURNS", ge=1, le=20)
    handoff_fallbacks: int = Field(default=2, alias="HANDOFF_FALLBACKS", ge=1, le=20)
    console_session_hours: float = Field(default=12.0, alias="CONSOLE_SESSION_HOURS", gt=0, le=24 * 14)
    console_cookie_secure: bool = Field(default=False, alias="CONSOLE_COOKIE_SECURE")  # true behind HTTPS
    # The address people reach the gateway at (links in replies, e.g. a demo's calendar invitation);
    # default: the local gateway.
    public_url: str = Field(default="", alias="PUBLIC_URL", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$")

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def telegram_file_url(self) -> str:
        """Where the Bot API serves files (voice notes): beside TELEGRAM_API_URL, `.../file/bot`."""
        base = self.telegram_api_url.rstrip("/")
        return f"{base[:-3]}file/bot" if base.endswith("/bot") else f"{base}/file/bot"

    @property
    def prospect_channel_set(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.prospect_channels.split(",") if c.strip())

    @property
    def widget_origins(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.widget_allowed_origins.split(",") if o.strip())

    @property
    def scoring_models_dir(self) -> Path:
        """The trained lead/deal scoring models (`crm-assistant train-scoring` writes them)."""
        return self.var_dir / "models" / "scoring"

    @property
    def effective_database_url(self) -> str:
        """`DATABASE_URL`, or the embedded SQLite file under `var/`."""
        return self.database_url or f"sqlite:///{self.var_dir / 'crm.sqlite3'}"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.bind_host}:{self.rasa_port}"

    @property
    def action_server_url(self) -> str:
        return f"http://{self.bind_host}:{self.action_server_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.bind_host}:{self.gateway_port}"

    @property
    def public_base_url(self) -> str:
        return (self.public_url or self.gateway_url).rstrip("/")

    @property
    def logs_dir(self) -> Path:
        return self.var_dir / "logs"

    @property
    def files_dir(self) -> Path:
        """The document library's files."""
        return self.var_dir / "documents"

    @property
    def demo_tokens_file(self) -> Path:
        return self.var_dir / "demo-tokens.json"

    def secret(self) -> str:
        """The key the gateway signs identities with and the action server verifies.

        `ASSISTANT_SECRET` wins; otherwise a random key is created once in `var/secret`
        (mode 0600) so that every local process shares it without configuration.
        """
        if self.assistant_secret is not None:
            return self.assistant_secret.get_secret_value()
        path = self.var_dir / "secret"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            candidate = secrets.token_hex(32)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first; read theirs
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(candidate)
        return path.read_text().strip()

    def rasa_api_token(self) -> str:
        """Token for Rasa's HTTP API (`rasa run --auth-token`), derived from the secret."""
        return hmac.new(self.secret().encode(), b"rasa-http-api", hashlib.sha256).hexdigest()

    def child_environment(self) -> dict[str, str]:
        """Environment for the processes the supervisor starts: the same settings, made explicit."""
        env = {
            "CRM_PROJECT_ROOT": str(self.project_root),
            "CRM_VAR_DIR": str(self.var_dir),
            "DATABASE_URL": self.effective_database_url,
            "BIND_HOST": self.bind_host,
            "RASA_PORT": str(self.rasa_port),
            "ACTION_SERVER_PORT": str(self.action_server_port),
            "GATEWAY_PORT": str(self.gateway_port),
            "RASA_VENV": str(self.rasa_venv),
            "RASA_MODELS_DIR": str(self.models_dir),
            "RASA_TIMEOUT_SECONDS": str(self.rasa_timeout_seconds),
            "MAX_MESSAGE_CHARS": str(self.max_message_chars),
            "ASSISTANT_SECRET": self.secret(),
            "LOG_LEVEL": self.log_level,
            "SCHEDULER_ENABLED": str(self.scheduler_enabled).lower(),
            "SCHEDULER_INTERVAL_SECONDS": str(self.scheduler_interval_seconds),
            "RECURRENCE_HORIZON_DAYS": str(self.recurrence_horizon_days),
            "CHANNEL_TIMEOUT_SECONDS": str(self.channel_timeout_seconds),
            "LINK_CODE_MINUTES": str(self.link_code_minutes),
            "SLACK_SOCKET_MODE": str(self.slack_socket_mode).lower(),
            "SLACK_API_URL": self.slack_api_url,
            **({"SLACK_SUPPORT_CHANNEL": self.slack_support_channel} if self.slack_support_channel else {}),
            "TELEGRAM_MODE": self.telegram_mode,
            "TELEGRAM_API_URL": self.telegram_api_url,
            "WIDGET_ALLOWED_ORIGINS": self.widget_allowed_origins,
            "WIDGET_MESSAGES_PER_MINUTE": str(self.widget_messages_per_minute),
            "WIDGET_COOKIE_SECURE": str(self.widget_cookie_secure).lower(),
            "VOICE_ENGINE": self.voice_engine,
            "VOSK_GRAMMAR": str(self.vosk_grammar).lower(),
            "VOICE_MIN_CONFIDENCE": str(self.voice_min_confidence),
            "VOICE_MAX_BYTES": str(self.voice_max_bytes),
            "VOICE_MAX_SECONDS": str(self.voice_max_seconds),
            "TTS_VOICE": self.tts_voice,
            "TTS_RATE": str(self.tts_rate),
            "TTS_BACKEND": self.tts_backend,
            # Used by endpoints.yml (Rasa substitutes ${...} when it reads the file).
            "ACTION_ENDPOINT_URL": f"{self.action_server_url}/webhook",
            # Nothing in the product calls the internet.
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_HOST": self.bind_host,
        }
        for name, path in (("VOSK_MODEL_PATH", self.vosk_model_path), ("WHISPER_MODEL_PATH", self.whisper_model_path)):
            if path is not None:
                env[name] = str(path)
        for name, secret in (
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
            ("SLACK_APP_TOKEN", self.slack_app_token),
            ("TELEGRAM_BOT_TOKEN", self.telegram_bot_token),
            ("TELEGRAM_WEBHOOK_SECRET", self.telegram_webhook_secret),
        ):
            if secret is not None:
                env[name] = secret.get_secret_value()
        return env


def open_store(settings: Settings) -> Store:
    """The CRM store every process opens the same way: its database, secret key and document folder."""
    from crm_backend.store import Store

    return Store.from_url(
        settings.effective_database_url,
        secret=settings.secret(),
        files_dir=settings.files_dir,
        models_dir=settings.scoring_models_dir,
    )
