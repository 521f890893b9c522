"""A recording HTTP server on 127.0.0.1, run in its own thread so that subprocesses (the gateway)
and tests alike can call it. Platform fakes add their routes and record every call the product made.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from assistant.stack import free_port


@dataclass(frozen=True)
class Call:
    """One request the product made: the API method (path tail), its parameters and headers."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class Recorder:
    """Every call received, in order; thread-safe; tests wait on it."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._cond = threading.Condition()

    def add(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def calls(self, method: str | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def clear(self) -> None:
        with self._cond:
            self._calls.clear()

    def wait_for(
        self, method: str, predicate: Callable[[Call], bool] = lambda _c: True, timeout: float = 60.0, since: int = 0
    ) -> Call:
        """The first call to `method` (after the first `since` calls) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self._calls[since:]:
                    if call.method == method and predicate(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self._calls[since:]]
                    raise TimeoutError(f"no matching {method} call within {timeout}s; saw {seen}")
                self._cond.wait(left)

    def __len__(self) -> int:
        with self._cond:
            return len(self._calls)


RoutesFactory = Callable[[Recorder], Iterable[web.RouteDef]]


class FakeServer:
    """An aiohttp app on a free 127.0.0.1 port, in a background thread with its own event loop."""

    def __init__(self, routes: RoutesFactory) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self._routes = routes
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.add_routes(list(self._routes(self.recorder)))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
