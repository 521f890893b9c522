"""The scripted conversations of bench/conversations.yml through the real stack: gateway → Rasa →
action server → CRM, as the demo reps, with the database checked after each conversation.

The figures and the transcripts of the failed conversations go to var/conversations-e2e.json;
`crm-assistant bench skills` measures the same set at 100,000 leads.
"""

from __future__ import annotations

import json
import sys

import pytest

from assistant.conversations import load_conversations, play, summary_text
from assistant.settings import PROJECT_ROOT
from crm_backend.models import Base
from crm_backend.store import Store
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e

CONVERSATIONS = PROJECT_ROOT / "bench" / "conversations.yml"
REPORT = PROJECT_ROOT / "var" / "conversations-e2e.json"
MIN_TASK_SUCCESS = 0.90


@pytest.mark.timeout(3600)
async def test_scripted_conversations_succeed_and_never_leak_or_write_on_no(running: Running) -> None:
    conversations = load_conversations(CONVERSATIONS, Base.metadata)
    store = Store.from_url(running.settings.effective_database_url)
    try:
        outcome = await play(conversations, running.settings.gateway_url, running.tokens, store.engine)
    finally:
        store.dispose()
    report = outcome.report()
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    sys.stdout.write(summary_text(report) + f"\nfull report: {REPORT}\n")

    leaks = [f"{name}: {f.where} {f.check}: {f.detail}" for name, f in outcome.critical_failures]
    assert not leaks, "a reply leaked another rep's data, or a refusal/no/stop wrote something:\n" + "\n".join(leaks)
    failed = [
        f"{r.name}: " + "; ".join(f"{f.where} {f.check}: {f.detail}" for f in r.failures)
        for r in outcome.results
        if not r.passed
    ]
    assert outcome.success_rate >= MIN_TASK_SUCCESS, (
        f"task success {outcome.success_rate:.1%} < {MIN_TASK_SUCCESS:.0%}; failed:\n" + "\n".join(failed)
    )
