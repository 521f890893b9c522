"""`crm-assistant run` as a newcomer uses it: start, follow the printed curl line, Ctrl-C, no orphans."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from assistant.stack import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed in {timeout}s:\n{''.join(seen)}")


def curl_request(banner: str) -> urllib.request.Request:
    """The request the printed curl line describes, built from the line itself."""
    start = banner.index("curl ")
    command = banner[start:].split("Press Ctrl-C")[0].replace("\\\n", " ")
    args = shlex.split(command)
    url = next(a for a in args if a.startswith("http://"))
    headers = dict(args[i + 1].split(": ", 1) for i, a in enumerate(args) if a == "-H")
    data = args[args.index("-d") + 1].encode()
    return urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310


def test_run_prints_a_working_curl_line_and_ctrl_c_leaves_no_process_behind(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        {
            "CRM_VAR_DIR": str(tmp_path),
            "GATEWAY_PORT": str(free_port()),
            "RASA_PORT": str(free_port()),
            "ACTION_SERVER_PORT": str(free_port()),
        }
    )
    env.pop("DATABASE_URL", None)
    env.pop("ASSISTANT_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: list[psutil.Process] = []
    try:
        banner = read_until(proc, "Press Ctrl-C", timeout=300)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3
        with urllib.request.urlopen(curl_request(banner), timeout=60) as resp:  # noqa: S310
            reply = json.loads(resp.read())
        assert re.search(r"You have 3 open deals", reply["replies"][0]["text"])
        assert (tmp_path / "crm.sqlite3").exists()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:  # a failed assertion above: stop it as a user would, so nothing is left behind
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        _, alive = psutil.wait_procs(children, timeout=10)
        for leftover in alive:
            leftover.kill()
    assert alive == [], f"orphans left running: {alive}"
