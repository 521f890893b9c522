"""When the assistant is not sure what was meant: suggest the likeliest requests as buttons.

Rasa's two-stage fallback calls `action_default_ask_affirmation` for a low-confidence message;
ours offers up to three of the likeliest skills in words people use (never a raw intent name)
plus "Something else", which makes Rasa ask the user to rephrase. Nothing is ever written on a
guess: write skills still read their change back and wait for a yes.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

# What each intent means to a user; intents not listed here are never suggested.
TITLES = {
    "list_open_deals": "Show my open deals",
    "deal_status": "Check a deal's status",
    "account_overview": "Tell me about an account",
    "find_contact": "Find a contact",
    "list_leads": "Show my leads",
    "my_day": "What's on my agenda",
    "forecast": "My forecast",
    "forecast_accuracy": "How accurate the forecasts are",
    "lead_score": "How hot a lead is, and why",
    "list_signals": "Signals on my accounts",
    "whats_new": "What's new",
    "convert_currency": "Convert an amount to another currency",
    "create_lead": "Add a lead",
    "create_contact": "Add a contact",
    "create_account": "Add an account",
    "create_deal": "Add a deal",
    "update_deal": "Change a deal",
    "convert_lead": "Convert a lead",
    "log_activity": "Log a call, meeting or note",
    "create_task": "Add a task or reminder",
    "create_recurring": "Set up a recurring activity",
    "book_meeting": "Book a meeting",
    "run_macro": "Run a macro",
    "rescore_lead": "Re-score a lead",
    "qualify_lead": "Qualify a lead",
    "undo": "Undo my last change",
    "help": "What can you do?",
}
MAX_SUGGESTIONS = 3
MIN_CONFIDENCE = 0.05  # below this a ranked intent is noise, not a suggestion


def suggestions(ranking: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, payload) for the likeliest skills in the intent ranking, best first."""
    out: list[tuple[str, str]] = []
    for item in ranking:
        name = item.get("name")
        if name in TITLES and float(item.get("confidence") or 0) >= MIN_CONFIDENCE:
            out.append((TITLES[name], f"/{name}"))
        if len(out) == MAX_SUGGESTIONS:
            break
    if not out:
        out = [(TITLES[name], f"/{name}") for name in ("list_open_deals", "my_day", "help")]
    return out


class ActionAskAffirmation(Action):
    """The first stage of the two-stage fallback: "Did you mean …?" with buttons."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        ranking = list((tracker.latest_message or {}).get("intent_ranking") or [])
        buttons = [{"title": t, "payload": p} for t, p in suggestions(ranking)]
        buttons.append({"title": "Something else", "payload": "/out_of_scope"})
        dispatcher.utter_message(text="Sorry, I'm not sure I got that. Did you mean one of these?", buttons=buttons)
        return []
