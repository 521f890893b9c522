"""Sentiment for the gateway's event loop: predictions run in one worker thread, concurrent calls batched.

`await service.classify(text)` from any aiohttp handler; calls that arrive while the worker is busy, or
within `window_seconds` of each other, go to the model as one batch. Each call's latency (queueing included)
is kept, so the gateway can report p50/p95 per turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from assistant.sentiment.model import NEUTRAL_EMPTY, Sentiment, SentimentModel, percentile

log = logging.getLogger(__name__)


@dataclass
class _Request:
    text: str
    future: asyncio.Future[Sentiment]


class SentimentService:
    """Micro-batching front of a SentimentModel; one instance per event loop."""

    def __init__(
        self, model: SentimentModel, max_batch: int = 32, window_seconds: float = 0.005, keep_latencies: int = 2000
    ) -> None:
        self.model = model
        self.max_batch = max_batch
        self.window_seconds = window_seconds
        self.predict_calls = 0
        self._latencies: deque[float] = deque(maxlen=keep_latencies)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment")
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def classify(self, text: str) -> Sentiment:
        """The sentiment of one turn; blank text is neutral without running the model."""
        if not text.strip():
            return NEUTRAL_EMPTY
        if self._closed:
            raise RuntimeError("the sentiment service is closed")
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue), name="sentiment-batcher")
        future: asyncio.Future[Sentiment] = loop.create_future()
        self._queue.put_nowait(_Request(text, future))
        result = await future
        self._latencies.append(loop.time() - started)
        return result

    async def classify_many(self, texts: list[str]) -> list[Sentiment]:
        """Several turns at once (they join the same batches as single calls)."""
        return list(await asyncio.gather(*(self.classify(t) for t in texts)))

    def latency(self) -> dict[str, float | int]:
        """p50/p95 seconds per turn over the recent calls."""
        values = list(self._latencies)
        return {
            "turns": len(values),
            "p50_seconds": round(percentile(values, 50), 4),
            "p95_seconds": round(percentile(values, 95), 4),
        }

    async def _run(self, queue: asyncio.Queue[_Request]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            if self.window_seconds > 0 and queue.qsize() < self.max_batch - 1:
                await asyncio.sleep(self.window_seconds)  # let the turns arriving together join this batch
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [r for r in batch if not r.future.done()]  # a caller may have been cancelled meanwhile
            if not live:
                continue
            self.predict_calls += 1
            try:
                results = await loop.run_in_executor(self._executor, self.model.predict, [r.text for r in live])
            except Exception as exc:  # the callers get the error; the worker keeps serving
                log.warning("sentiment prediction failed for a batch of %s: %s", len(live), exc)
                for r in live:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            for r, sentiment in zip(live, results, strict=True):
                if not r.future.done():
                    r.future.set_result(sentiment)

    async def aclose(self) -> None:
        """Stops the batcher and the worker thread (pending calls are cancelled)."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait().future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
