"""What the stack benchmarks share: the whole product (trained model, demo data, Rasa, actions, gateway) on
free local ports over a temporary database, with Slack and Telegram pointed at local fake servers, and the
report written beside the others in bench/results/."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assistant.cli import ensure_demo_data  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.stack import Stack  # noqa: E402
from assistant.training import ensure_model  # noqa: E402
from tests.fakes import slack_api, telegram_api  # noqa: E402
from tests.fakes.platforms import stack_settings  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402


@dataclass
class Bench:
    settings: Settings
    tokens: dict[str, str]
    slack: FakeServer
    telegram: FakeServer


@contextmanager
def running_stack(prefix: str, prepare: Callable[[Settings], None] | None = None, **overrides: str) -> Iterator[Bench]:
    """The product running; `prepare(settings)` runs on the seeded database before the processes start."""
    slack = FakeServer(slack_api.slack_routes).start()
    telegram = FakeServer(telegram_api.telegram_routes).start()
    try:
        with _workdir(prefix) as tmp:
            settings = stack_settings(Path(tmp), slack, telegram, **{"LOG_LEVEL": "WARNING", **overrides})
            model, _ = ensure_model(settings)
            tokens = ensure_demo_data(settings)
            if prepare is not None:
                prepare(settings)
            stack = Stack(settings, model)
            stack.start()
            try:
                yield Bench(settings, tokens, slack, telegram)
            finally:
                stack.stop()
    finally:
        slack.stop()
        telegram.stop()


@contextmanager
def _workdir(prefix: str) -> Iterator[str]:
    """A temporary directory for the run's database and logs; kept under BENCH_KEEP_DIR when that is set."""
    keep = os.environ.get("BENCH_KEEP_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield tempfile.mkdtemp(prefix=f"bench-{prefix}-", dir=keep)
        return
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as tmp:
        yield tmp


def write_report(out: Path, **fields: Any) -> dict[str, Any]:
    """The report (date and machine first) as JSON in `out` and on stdout."""
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {platform.python_version()}",
        **fields,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report
