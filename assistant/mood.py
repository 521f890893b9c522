"""Sentiment on every user turn, for the gateway: the model (assistant.sentiment) loaded once in the
background at start-up, so the gateway answers at once; until it is ready, turns are recorded without a
sentiment. Its state is shown by /readyz (`details.sentiment`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from assistant.settings import Settings

log = logging.getLogger(__name__)


def sentiment_config(settings: Settings) -> Any:
    """The project's settings as the sentiment package's config (imported lazily: torch is a large import)."""
    from assistant.sentiment import SentimentConfig

    return SentimentConfig(head_dir=settings.models_dir / "sentiment", model_path=settings.sentiment_model_path)


def prepare(settings: Settings) -> tuple[Any, bool]:
    """Train the sentiment head if its data changed (`crm-assistant train` runs this); (path, trained)."""
    from assistant.sentiment import ensure_head

    return ensure_head(sentiment_config(settings))


@dataclass
class Mood:
    """The loaded model's service, or why there is none."""

    settings: Settings
    service: Any = None
    error: str | None = None
    loading: asyncio.Task[None] | None = None

    async def load(self) -> None:
        try:
            from assistant.sentiment import SentimentService, load_model

            model = await asyncio.to_thread(load_model, sentiment_config(self.settings))
            self.service = SentimentService(model)
            log.info("sentiment: model ready (%s)", self.settings.sentiment_model_path or "MiniLM + trained head")
        except Exception as exc:  # a missing model must not take the gateway down
            self.error = str(exc) or type(exc).__name__
            log.error("sentiment: unavailable: %s", self.error)

    def state(self) -> dict[str, Any]:
        if not self.settings.sentiment_enabled:
            return {"ok": False, "detail": "off (SENTIMENT_ENABLED=false)"}
        if self.service is not None:
            return {"ok": True, "model": str(self.settings.sentiment_model_path or "minilm-head")}
        return {"ok": False, "detail": self.error or "loading"}


MOOD = web.AppKey("mood", Mood)


def mount(app: web.Application, settings: Settings, on_ready: Any) -> None:
    """Load the model in the background when enabled; `on_ready(service)` hands it to the Dialogue."""
    mood = Mood(settings)
    app[MOOD] = mood
    if not settings.sentiment_enabled:
        return

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        async def load_then_hand_over() -> None:
            await mood.load()
            if mood.service is not None:
                on_ready(mood.service)

        mood.loading = asyncio.create_task(load_then_hand_over())
        yield
        if not mood.loading.done():
            mood.loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mood.loading
        if mood.service is not None:
            await mood.service.aclose()

    app.cleanup_ctx.append(lifecycle)
