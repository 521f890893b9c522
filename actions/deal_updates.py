"""Changing a deal by conversation: stage, amount, close date, won and lost — read back first."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from actions import resolve
from actions.base import Ask, Turn
from actions.confirm import Pending, WriteAction, Writer, ask, writer
from actions.parsing import extract_amount_and_when
from actions.replies import ActionResult, Reply, day, money
from crm_backend.models.deals import Deal, DealStage
from crm_backend.services import records
from crm_backend.store import UnitOfWork

LOST_REASON = re.compile(
    r"(?:\bbecause\b|\bsince\b|\bdue to\b|\breason\b:?|\bas\b they|[,:;]|\s[-–—]\s)\s*(?P<reason>.+)$", re.IGNORECASE
)
STAGE_WORDS = {s.value.lower(): s for s in DealStage}


def lost_reason_in(text: str) -> str | None:
    """The free-text reason after "because", a comma or a dash ("…, they went with a competitor")."""
    m = LOST_REASON.search(text)
    if not m:
        return None
    reason = m.group("reason").strip(" .!")
    return reason[:500] if len(reason) >= 3 else None


def stage_of(value: str | None) -> DealStage | None:
    if not value:
        return None
    return STAGE_WORDS.get(value.strip().lower())


def _load_deal(uow: UnitOfWork, deal_id: int) -> Deal:
    deal: Deal = records.get_record(uow, records.resource("deals"), deal_id)
    return deal


def deal_changes(deal: Deal, changes: dict[str, Any]) -> str:
    """'Move “Nimbus – Platform” from Proposal to Negotiation, amount stays $48,000'."""
    parts: list[str] = []
    stage = stage_of(changes.get("stage"))
    if stage is DealStage.CLOSED_WON:
        parts.append(f"Mark “{deal.name}” as won")
    elif stage is DealStage.CLOSED_LOST:
        parts.append(f"Mark “{deal.name}” as lost (reason: “{changes.get('lost_reason')}”)")
    elif stage is not None:
        parts.append(f"Move “{deal.name}” from {deal.stage.value} to {stage.value}")
    else:
        parts.append(f"Update “{deal.name}”")
    if "amount" in changes:
        new = money(Decimal(changes["amount"]), changes.get("currency") or deal.currency)
        parts.append(f"amount {money(deal.amount, deal.currency)} → {new}")
    elif stage is not None:
        parts.append(f"amount stays {money(deal.amount, deal.currency)}")
    if "expected_close_date" in changes:
        new_day = date.fromisoformat(changes["expected_close_date"])
        parts.append(f"close date {day(deal.expected_close_date)} → {day(new_day)}")
    return ", ".join(parts)


class ActionUpdateDeal(WriteAction):
    """'move the Nimbus deal to negotiation' / 'make it 60k' / 'push it to Friday' / 'we won Acme'."""

    def name(self) -> str:
        return "action_update_deal"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        found = resolve.target(uow, turn, ("deal",), self.name())
        deal = _load_deal(uow, found.ref.id)
        zone = turn.zone(uow)
        extraction = extract_amount_and_when(turn.text, now=turn.now, tz=zone.key, default_currency=deal.currency)
        changes: dict[str, Any] = {}
        stage = stage_of(turn.entity("stage"))
        if stage is not None and stage != deal.stage:
            changes["stage"] = stage.value
        if stage is DealStage.CLOSED_LOST:
            reason = lost_reason_in(turn.text)
            if reason is None:
                raise Ask(
                    f"Why was “{deal.name}” lost? Say it in one go, e.g. “mark it lost, they went with a competitor”.",
                    events=found.events,
                )
            changes["lost_reason"] = reason
        if extraction.money is not None:
            if extraction.money.currency != deal.currency:
                raise Ask(
                    f"“{deal.name}” is in {deal.currency}; say the amount in {deal.currency} "
                    f"(e.g. “make it {money(extraction.money.amount, deal.currency)}”).",
                    events=found.events,
                )
            changes["amount"] = str(extraction.money.amount)
        if extraction.when is not None:
            changes["expected_close_date"] = extraction.when.start.astimezone(zone).date().isoformat()
        if not changes:
            if stage is not None:
                return ActionResult([Reply(f"“{deal.name}” is already in {stage.value}.")], found.events)
            raise Ask(
                f"What should I change on “{deal.name}”: the stage, the amount or the close date?", events=found.events
            )
        pending = Pending(
            "update_deal",
            {"deal_id": deal.id, "version": deal.version, "changes": changes},
            deal_changes(deal, changes),
        )
        return ask(pending, found.events)


@writer
class UpdateDeal(Writer):
    kind = "update_deal"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        deal = _load_deal(uow, int(args["deal_id"]))
        changes = dict(args["changes"])
        before = deal_changes(deal, changes)
        records.update_record(uow, records.resource("deals"), deal.id, changes, int(args["version"]))
        return _done(before)

    def refresh(self, uow: UnitOfWork, args: dict[str, Any]) -> Pending | None:
        deal = _load_deal(uow, int(args["deal_id"]))
        changes = dict(args["changes"])
        return Pending(self.kind, {**args, "version": deal.version}, deal_changes(deal, changes))


def _done(summary: str) -> str:
    """'Move X from A to B' → 'Moved X from A to B.' (the read-back in the past tense)."""
    for verb, past in (("Move ", "Moved "), ("Mark ", "Marked "), ("Update ", "Updated ")):
        if summary.startswith(verb):
            return past + summary.removeprefix(verb) + "."
    return summary + "."
