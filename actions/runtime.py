"""What the actions need from the process they run in: the CRM store, the identity key, the embedder.

Installed once by the action server at start-up (never at import time), and by tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_backend.services.knowledge import Embedder
from crm_backend.store import Store


@dataclass(frozen=True, slots=True)
class ActionRuntime:
    store: Store
    secret: str
    max_identity_age_seconds: float = 600.0
    undo_window_minutes: int = 30
    embedder: Embedder | None = None  # knowledge-base answers (None: the assistant says it cannot look them up)
    public_url: str = "http://127.0.0.1:8080"  # where links in replies point (the gateway, as people reach it)


_runtime: ActionRuntime | None = None


def install(runtime: ActionRuntime | None) -> None:
    """Make `runtime` the one every action uses (None uninstalls it)."""
    global _runtime
    _runtime = runtime


def current() -> ActionRuntime:
    if _runtime is None:
        raise RuntimeError("The action runtime is not installed; start actions with `crm-assistant actions`.")
    return _runtime
