"""The action server process: rasa-sdk's HTTP app serving `actions/`, with the CRM store attached.

The store is opened at start-up from settings (never at import time) and disposed at shutdown;
the server binds to `BIND_HOST` (localhost by default) only.
"""

from __future__ import annotations

import logging

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor

from actions import runtime
from assistant.embeddings import available_embedder
from assistant.settings import Settings, open_store

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    store = open_store(settings)
    runtime.install(
        runtime.ActionRuntime(
            store=store,
            secret=settings.secret(),
            undo_window_minutes=settings.undo_window_minutes,
            embedder=available_embedder(),
            public_url=settings.public_base_url,
        )
    )
    executor = ActionExecutor()
    executor.register_package("actions")
    app = create_app(executor, cors_origins=[])

    @app.after_server_stop
    async def close_store(*_: object) -> None:
        runtime.install(None)
        store.dispose()

    names = sorted(a.name for a in executor.list_actions())
    log.info("action server: %d actions (%s) on %s", len(names), ", ".join(names), settings.action_server_url)
    app.run(
        host=settings.bind_host, port=settings.action_server_port, single_process=True, access_log=False, motd=False
    )
