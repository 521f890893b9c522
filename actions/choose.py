"""Answers to "which one?": picking from the offered records, and "no, the other one".

Both set the focus record and replay the user's last request (kept in the `last_request` slot)
for it, in the same turn, by running that request's action directly.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CrmAction, Turn
from actions.confirm import PENDING
from actions.replies import ActionResult, Reply
from actions.resolve import CANDIDATES, FOCUS, LAST_REQUEST, MATCH, Ref, load, score
from crm_backend.store import UnitOfWork

ORDINAL_WORDS = {"last": -1}


def said_names(message: dict[str, Any]) -> list[str]:
    """Record names in a message ("the one at Globex", "no, the other Acme")."""
    return [
        str(e.get("value"))
        for e in message.get("entities") or []
        if e.get("entity") in ("record", "ORG", "PERSON") and e.get("value")
    ]


def _fit(names: list[str], ref: Ref) -> float:
    return max(score(n, f"{ref.label} {ref.detail}") for n in names)


def _candidates(turn: Turn) -> list[str]:
    value = turn.slot(CANDIDATES)
    return [k for k in value if isinstance(k, str)] if isinstance(value, list) else []


def _replay(uow: UnitOfWork, turn: Turn, key: str, ref: Ref) -> ActionResult:
    request = turn.slot(LAST_REQUEST)
    action = CrmAction.named(request.get("action", "")) if isinstance(request, dict) else None
    # The replayed request makes its own read-back if it needs one; an older one must not survive.
    focus = [SlotSet(FOCUS, key), SlotSet(PENDING, None)]
    if action is None:
        return ActionResult([Reply(f"OK, {ref.label}. What would you like to know or change?")], focus)
    turn.overrides[FOCUS] = key
    result = action.perform(uow, turn)
    return ActionResult(result.replies, [*focus, *result.events])


class ActionChooseRecord(CrmAction):
    """'the second one' / a button: the record picked from the last list offered."""

    def name(self) -> str:
        return "action_choose_record"

    def perform(self, uow, turn: Turn) -> ActionResult:
        keys = _candidates(turn)
        if not keys:
            return ActionResult([Reply("I haven't offered you a choice. Which record are you looking for?")])
        picked = self._pick(uow, turn, keys)
        if picked is None:
            listing = ", ".join(f"{n}" for n in range(1, len(keys) + 1))
            return ActionResult([Reply(f"Which one? Say a number ({listing}) or tap a button.")])
        loaded = load(uow, picked)
        if loaded is None:
            return ActionResult([Reply("I can't find that record any more.")], [SlotSet(CANDIDATES, None)])
        return _replay(uow, turn, picked, loaded[0])

    @staticmethod
    def _pick(uow: UnitOfWork, turn: Turn, keys: list[str]) -> str | None:
        latest = turn.tracker.latest_message or {}
        ordinals = [
            str(e.get("value")) for e in latest.get("entities") or [] if e.get("entity") == "ordinal" and e.get("value")
        ]
        for raw in ordinals:
            index = ORDINAL_WORDS.get(raw.lower())
            if index is None and raw.isdigit():
                index = int(raw) - 1
            if index is not None and -len(keys) <= index < len(keys):
                return keys[index]
        text = str(latest.get("text") or "").strip()
        if text.isdigit() and 1 <= int(text) <= len(keys):
            return keys[int(text) - 1]
        names = said_names(latest)
        if names:
            refs = [hit[0] for k in keys if (hit := load(uow, k))]
            scored = sorted(((_fit(names, r), r) for r in refs), key=lambda x: -x[0])
            if scored and scored[0][0] >= MATCH:
                return scored[0][1].key
        return None


class ActionChooseOther(CrmAction):
    """'no, the other one': the next candidate of the last resolution, then the request again."""

    def name(self) -> str:
        return "action_choose_other"

    def perform(self, uow, turn: Turn) -> ActionResult:
        keys = _candidates(turn)
        focus = turn.slot(FOCUS)
        refs = [hit[0] for k in keys if (hit := load(uow, k))]
        latest = turn.tracker.latest_message or {}
        names = said_names(latest)
        if names:
            refs = [r for r in refs if _fit(names, r) >= MATCH]
        others = [r for r in refs if r.key != focus]
        if not others:
            current = load(uow, focus)
            what = f"“{current[0].label}”" if current else "That"
            return ActionResult([Reply(f"{what} is the only match I can see. Which name should I look for instead?")])
        chosen = others[0]
        # The remaining order keeps rotating: the next "the other one" moves on again.
        rotated = [r.key for r in others[1:]] + ([focus] if isinstance(focus, str) else [])
        result = _replay(uow, turn, chosen.key, chosen)
        return ActionResult(result.replies, [SlotSet(CANDIDATES, [chosen.key, *rotated]), *result.events])
