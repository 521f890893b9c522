"""Unit and in-process gateway tests do without the sentiment model (torch and MiniLM would load in every
gateway a test starts); tests/unit/assistant/test_sentiment.py and the e2e suite exercise it for real."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_sentiment_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_ENABLED", "false")
