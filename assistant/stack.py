"""Process supervision: the action server, the Rasa server and the gateway as child processes.

Used by `crm-assistant run`, the end-to-end tests and the benchmark, so all three start the
product the same way. Each child runs in its own session (Ctrl-C reaches only the supervisor,
which then stops the children in order: gateway first, so no new turn starts, then Rasa, then
the action server), logs to var/logs/<name>.log, and is killed if it ignores SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from assistant.settings import Settings
from assistant.training import rasa_executable

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 15.0


class StartupFailed(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for tests and the benchmark)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0, predicate: Callable[[bytes], bool] | None = None) -> bool:
    """True when `url` answers 200 (and `predicate` accepts the body) within `timeout`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own localhost URLs
            body = resp.read()
            return resp.status == 200 and (predicate is None or predicate(body))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _model_loaded(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("model_file"))
    except (ValueError, AttributeError):
        return False


@dataclass
class Component:
    name: str
    argv: list[str]
    ready_url: str
    ready_body: Callable[[bytes], bool] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_ready(self) -> bool:
        return self.running and http_ok(self.ready_url, predicate=self.ready_body)


class Stack:
    """The three processes of the product, started and stopped together."""

    def __init__(self, settings: Settings, model: Path) -> None:
        self.settings = settings
        root = settings.project_root
        cli = [sys.executable, "-m", "assistant.cli"]
        self.components: dict[str, Component] = {
            "actions": Component("actions", [*cli, "actions"], f"{settings.action_server_url}/health"),
            "rasa": Component(
                "rasa",
                [
                    str(rasa_executable(settings)),
                    "run",
                    "--enable-api",
                    "--auth-token",
                    settings.rasa_api_token(),
                    "--model",
                    str(model),
                    "--interface",
                    settings.bind_host,
                    "--port",
                    str(settings.rasa_port),
                    "--endpoints",
                    str(root / "endpoints.yml"),
                    "--credentials",
                    str(root / "credentials.yml"),
                ],
                f"{settings.rasa_url}/status?token={settings.rasa_api_token()}",
                _model_loaded,
            ),
            "gateway": Component("gateway", [*cli, "api"], f"{settings.gateway_url}/healthz"),
        }

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start everything and wait until each answers its health check."""
        try:
            for name in ("actions", "rasa"):
                self.launch(name)
            self.wait_ready(["actions", "rasa"])
            self.launch("gateway")
            self.wait_ready(["gateway"])
        except BaseException:
            self.stop()
            raise

    def launch(self, name: str) -> None:
        component = self.components[name]
        if component.running:
            return
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.settings.logs_dir / f"{name}.log"
        component.log_handle = log_path.open("ab")
        env = dict(os.environ)
        env.update(self.settings.child_environment())
        component.process = subprocess.Popen(
            component.argv,
            cwd=self.settings.project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=component.log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("started %s (pid %d), log: %s", name, component.process.pid, log_path)

    def wait_ready(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_seconds
        pending = list(names)
        while pending:
            for name in list(pending):
                component = self.components[name]
                if not component.running:
                    raise StartupFailed(f"{name} exited during start-up.\n{self.log_tail(name)}")
                if component.is_ready():
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise StartupFailed(
                    f"{', '.join(pending)} not ready after "
                    f"{self.settings.startup_timeout_seconds:.0f}s; see {self.settings.logs_dir}"
                )
            if pending:
                time.sleep(0.25)

    def stop_component(self, name: str) -> None:
        component = self.components[name]
        process = component.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM; killing it", name)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if component.log_handle is not None:
            component.log_handle.close()
            component.log_handle = None
        component.process = None

    def stop(self) -> None:
        for name in ("gateway", "rasa", "actions"):
            self.stop_component(name)

    def first_exited(self) -> str | None:
        """The name of a component that has died since it started, if any."""
        for name, component in self.components.items():
            if component.process is not None and component.process.poll() is not None:
                return name
        return None

    def pids(self) -> dict[str, int]:
        return {n: c.process.pid for n, c in self.components.items() if c.process is not None}

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.settings.logs_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
