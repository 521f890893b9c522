"""The questions forms ask, one custom `action_ask_<slot>` each (Rasa calls it when the form
needs that slot). Questions name what the user already said ("Which company is Jane Doe with?");
keeping them here rather than as domain responses keeps `rasa data validate` strict."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import SKIPPED

QUESTIONS = {
    "lead_name": "What's the lead's name?",
    "lead_company": "Which company is {lead_name} with?",
    "lead_email": "What's {lead_name}'s email address or phone number? (say \"skip\" if you don't have one)",
    "contact_name": "What's the contact's full name?",
    "contact_account": "Which account does {contact_name} belong to?",
    "contact_email": "What's {contact_name}'s email address or phone number? (say \"skip\" if you don't have one)",
    "account_name": "What's the company's name?",
    "account_industry": 'Which industry is {account_name} in? (say "skip" to leave it empty)',
    "deal_account": "Which account is the deal with?",
    "deal_amount": 'How much is the deal worth? (e.g. "50k", "$120,000", "18.500 €")',
    "deal_close_date": 'When do you expect it to close? (e.g. "end of March", "in six weeks", "2027-01-15")',
    "deal_name": 'What should I call the deal? (say "skip" to name it after the account)',
    "bant_budget": 'Budget: do they have one, and roughly how much? (e.g. "yes, about 40k", "no budget yet")',
    "bant_authority": "Authority: are you talking to the person who signs? (yes / no)",
    "bant_need": "Need: what problem do they need solved? (a sentence is fine)",
    "bant_timeline": 'Timeline: when do they want to decide or go live? (e.g. "this quarter", "by June")',
}
REPHRASE = (
    "Sorry, I still didn't get that. Could you say it differently? "
    'For example "tell me about Acme" or "my open deals".'
)


def question(slot: str, slots: dict[str, Any]) -> str:
    """The question for `slot`, with earlier answers filled in ("that person" when not known)."""
    known = {k: (v if v not in (None, SKIPPED) else "") for k, v in slots.items()}
    fallbacks = {
        "lead_name": "the lead",
        "contact_name": "the contact",
        "account_name": "the company",
        "deal_account": "the account",
    }
    values = {
        k: known.get(k) or fallbacks.get(k, "") for k in ("lead_name", "contact_name", "account_name", "deal_account")
    }
    return QUESTIONS[slot].format(**values)


class AskForSlot(Action):
    """Asks the question of one form slot."""

    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=question(self.slot, tracker.current_slot_values()))
        return []


# One subclass per slot: the action server registers every Action subclass by its name.
ASKS = {slot: type(f"Ask_{slot}", (AskForSlot,), {"slot": slot}) for slot in QUESTIONS}


class ActionAskRephrase(Action):
    """The second stage of the two-stage fallback: ask the user to say it differently."""

    def name(self) -> str:
        return "action_default_ask_rephrase"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(text=REPHRASE)
        return []
