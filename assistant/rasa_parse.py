"""Parse texts with a trained Rasa model, inside the Rasa virtual environment.

Run as `.venv-rasa/bin/python assistant/rasa_parse.py MODEL.tar.gz`: reads JSON lines
`{"text": ...}` on standard input and writes one JSON line per text on standard output:
`{"text", "intent": {"name", "confidence"}, "entities": [{"entity", "value", "start", "end", "extractor"}]}`.
It imports nothing from this project (it runs in the other venv) and calls no network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

# Before Rasa is imported: no telemetry, and this folder (assistant/) must not shadow top-level modules.
os.environ["RASA_TELEMETRY_ENABLED"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

ENTITY_FIELDS = ("entity", "value", "start", "end", "extractor")


def reduced(parsed: dict[str, Any]) -> dict[str, Any]:
    intent = parsed.get("intent") or {}
    return {
        "text": parsed.get("text"),
        "intent": {"name": intent.get("name"), "confidence": float(intent.get("confidence") or 0.0)},
        "entities": [{k: e.get(k) for k in ENTITY_FIELDS} for e in parsed.get("entities") or []],
    }


async def parse_all(model: str, lines: TextIO, out: TextIO) -> int:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    count = 0
    for line in lines:
        if not line.strip():
            continue
        text = json.loads(line)["text"]
        parsed = await agent.parse_message(text)
        out.write(json.dumps(reduced(parsed), ensure_ascii=False) + "\n")
        out.flush()
        count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: rasa_parse.py MODEL.tar.gz < texts.jsonl\n")
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Only our JSON lines may reach standard output: anything Rasa or TensorFlow prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        count = asyncio.run(parse_all(argv[1], sys.stdin, out))
    finally:
        out.flush()
    sys.stderr.write(f"rasa_parse: {count} texts parsed\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
