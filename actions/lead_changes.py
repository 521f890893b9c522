"""Lead skills that write: convert a lead into an account, a contact (and a deal), and recompute a
lead's or deal's score — each read back first and done only after the user's yes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from actions import resolve
from actions.base import Turn
from actions.confirm import Pending, WriteAction, Writer, ask, writer
from actions.parsing import extract_amount_and_when
from actions.replies import ActionResult, Reply, day, money
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.leads import Lead, LeadStatus
from crm_backend.scoring import engine as scoring
from crm_backend.services import leads, records
from crm_backend.services.matching import normal_company
from crm_backend.store import UnitOfWork

_DEAL = r"(?:deals?|opportunit(?:y|ies)|opps?|oppty)"
DEAL_WORDS = re.compile(rf"\b{_DEAL}\b", re.IGNORECASE)
NO_DEAL = re.compile(
    rf"\b(?:without|no|not|don'?t|do not|skip|leave out)\b[^.;,]{{0,30}}?\b{_DEAL}\b|\b{_DEAL}\b[^.;,]{{0,10}}\bnot\b",
    re.IGNORECASE,
)
BULK = re.compile(r"\b(?:all|every|each)\b", re.IGNORECASE)
DEFAULT_CURRENCY = "USD"  # what a conversion's deal is in unless the user says otherwise (as the service)
TOP_REASONS = 3


def _lead(uow: UnitOfWork, lead_id: int) -> Lead:
    lead: Lead = records.get_record(uow, records.resource("leads"), lead_id)
    return lead


def wants_deal(text: str, record_types: list[str], amount_said: bool) -> bool:
    """'…to a deal', '…with a deal worth 20k', 'and create the opportunity' — not '…without a deal'."""
    if NO_DEAL.search(text):
        return False
    return amount_said or "deal" in record_types or bool(DEAL_WORDS.search(text))


# --- converting a lead ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DealPlan:
    amount: Decimal
    currency: str
    close: date | None


def existing_account(uow: UnitOfWork, company: str | None) -> resolve.Ref | None:
    """A visible account with the lead's company name (suffixes and case aside): reuse it, not a twin."""
    key = normal_company(company)
    if not company or not key:
        return None
    same = [m.ref for m in resolve.find(uow, ("account",), company) if normal_company(m.ref.label) == key]
    return min(same, key=lambda ref: ref.id) if same else None


def deal_name(account_name: str, lead: Lead) -> str:
    """The name the conversion gives its deal (as the service would)."""
    return f"{account_name} - {lead.need or 'New business'}"[:200]


def plan_conversion(uow: UnitOfWork, lead: Lead, deal: DealPlan | None) -> Pending:
    """The read-back and the arguments of converting `lead` as it is now."""
    account = existing_account(uow, lead.company)
    account_name = account.label if account else (lead.company or "")
    args: dict[str, Any] = {
        "lead_id": lead.id,
        "version": lead.version,
        "account_id": account.id if account else None,
        "account_name": account_name,
        "create_deal": deal is not None,
    }
    if deal is not None:
        args.update(
            deal_name=deal_name(account_name, lead),
            amount=str(deal.amount),
            currency=deal.currency,
            expected_close_date=deal.close.isoformat() if deal.close else None,
        )
    return Pending("convert_lead", args, conversion_text(lead, args, past=False))


def conversion_text(lead: Lead, args: dict[str, Any], *, past: bool) -> str:
    """'Convert lead Tom Baker (Fabrikam): create account Fabrikam and contact Tom Baker and a deal …'."""
    name = resolve.lead_name(lead)
    convert, create, add = ("Converted", "created", "added") if past else ("Convert", "create", "add")
    head = f"{convert} lead {name}" + (f" ({lead.company})" if lead.company else "")
    if args.get("account_id"):
        body = f"{add} contact {name} to the existing account {args['account_name']}"
    else:
        body = f"{create} account {args['account_name']} and contact {name}"
    if args.get("create_deal"):
        amount = Decimal(args["amount"])
        body += f" and a deal “{args['deal_name']}”"
        body += f" for {money(amount, args['currency'])}" if amount else " with no amount yet"
        if args.get("expected_close_date"):
            body += f", closing {day(date.fromisoformat(args['expected_close_date']))}"
    return f"{head}: {body}"


def already_converted(uow: UnitOfWork, lead: Lead) -> str:
    when = f" on {day(lead.converted_at.date())}" if lead.converted_at else ""
    account = resolve.load(uow, f"account:{lead.converted_account_id}") if lead.converted_account_id else None
    into = f" into the account {account[0].label}" if account else ""
    return f"{resolve.lead_name(lead)} was already converted{when}{into}; there's nothing left to convert."


class ActionConvertLead(WriteAction):
    """'convert Tom Baker' / 'turn the Fabrikam lead into an account' / 'convert her with a 20k deal'."""

    def name(self) -> str:
        return "action_convert_lead"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        found = resolve.target(uow, turn, ("lead",), self.name())
        lead = _lead(uow, found.ref.id)
        if lead.status is LeadStatus.CONVERTED:
            return ActionResult([Reply(already_converted(uow, lead))], found.events)
        if lead.status is LeadStatus.LOST:
            return ActionResult(
                [Reply(f"{resolve.lead_name(lead)} is marked Lost; reopen the lead before converting it.")],
                found.events,
            )
        if not lead.company:
            return ActionResult(
                [
                    Reply(
                        f"{resolve.lead_name(lead)} has no company, so I don't know which account to create. "
                        "Add the company to the lead first, then ask me again."
                    )
                ],
                found.events,
            )
        zone = turn.zone(uow)
        said = extract_amount_and_when(turn.text, now=turn.now, tz=zone.key, default_currency=DEFAULT_CURRENCY)
        deal: DealPlan | None = None
        if wants_deal(turn.text, turn.entity_values("record_type"), said.money is not None):
            amount = said.money.amount if said.money else (lead.budget or Decimal(0))
            currency = said.money.currency if said.money else DEFAULT_CURRENCY
            close = said.when.start.astimezone(zone).date() if said.when else None
            deal = DealPlan(amount, currency, close)
        return ask(plan_conversion(uow, lead, deal), found.events)


@writer
class ConvertLead(Writer):
    kind = "convert_lead"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        lead = _lead(uow, int(args["lead_id"]))
        done = conversion_text(lead, args, past=True)
        options = leads.Conversion(
            account_id=args.get("account_id"),
            account_name=None if args.get("account_id") else args.get("account_name"),
            create_deal=bool(args.get("create_deal")),
            deal_name=args.get("deal_name"),
            amount=Decimal(args["amount"]) if args.get("amount") is not None else None,
            currency=args.get("currency") or DEFAULT_CURRENCY,
            expected_close_date=args.get("expected_close_date"),
            version=int(args["version"]),
        )
        leads.convert(uow, lead.id, options)
        return done + "."

    def refresh(self, uow: UnitOfWork, args: dict[str, Any]) -> Pending | None:
        lead = _lead(uow, int(args["lead_id"]))
        if lead.status in (LeadStatus.CONVERTED, LeadStatus.LOST):
            return None
        deal = None
        if args.get("create_deal"):
            close = args.get("expected_close_date")
            deal = DealPlan(
                Decimal(args["amount"]),
                args.get("currency") or DEFAULT_CURRENCY,
                date.fromisoformat(close) if close else None,
            )
        return plan_conversion(uow, lead, deal)


# --- recomputing a score --------------------------------------------------------------------------
def score_text(row: EntityScore | None) -> str:
    """'55, warm' / 'not scored yet'."""
    if row is None:
        return "not scored yet"
    return f"{row.score}, {row.grade}" if row.grade else str(row.score)


def reasons_text(row: EntityScore) -> str:
    """'Top reasons: Late stage +25, Stalled −15; model: 62% likely' (the rules that moved it most)."""
    explanation = row.explanation or {}
    fired = sorted(explanation.get("rules") or [], key=lambda r: -abs(float(r.get("points") or 0)))
    parts = [f"{r.get('name')} {float(r.get('points') or 0):+g}" for r in fired[:TOP_REASONS]]
    model = explanation.get("model")
    if isinstance(model, dict) and model.get("probability") is not None:
        parts.append(f"model: {round(float(model['probability']) * 100)}% likely")
    if not parts:
        return "No scoring rule applies to it."
    return "Top reasons: " + ", ".join(parts) + "."


def _subject(ref: resolve.Ref) -> str:
    return f"lead {ref.label}" if ref.kind == "lead" else f"{ref.kind} “{ref.label}”"


class ActionRescoreLead(WriteAction):
    """'rescore the Nimbus lead' / 'recalculate Tom Baker's score': a recompute changes the stored
    score, so it is read back (with the score now) and done on yes."""

    def name(self) -> str:
        return "action_rescore_lead"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        said_kind = turn.entity("record_type")
        kinds = (said_kind,) if said_kind in ("lead", "deal") else ("lead", "deal")
        if not resolve.names_in(turn) and BULK.search(turn.text):
            return ActionResult([Reply("I rescore one lead or deal at a time. Which one should I recompute?")])
        found = resolve.target(uow, turn, kinds, self.name())
        etype = EntityType(found.ref.kind)
        if not scoring.scores_type(uow, etype):
            return ActionResult(
                [
                    Reply(
                        f"Nothing scores {etype.value}s yet (no active scoring rule or trained model), "
                        "so there's nothing to recompute."
                    )
                ],
                found.events,
            )
        row = scoring.stored_score(uow, etype, found.ref.id)
        subject = _subject(found.ref)
        pending = Pending(
            "rescore",
            {"entity_type": etype.value, "entity_id": found.ref.id},
            f"Recompute the score of {subject} (now {score_text(row)})",
        )
        return ask(pending, found.events)


@writer
class Rescore(Writer):
    kind = "rescore"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        etype = EntityType(args["entity_type"])
        kind = etype.value
        obj = records.get_record(uow, records.resource(resolve.COLLECTIONS[kind]), int(args["entity_id"]))
        ref = resolve.describe(uow, kind, [obj])[0]
        before = scoring.stored_score(uow, etype, obj.id)
        old = (before.score, before.grade) if before is not None else None
        row = scoring.score_records(uow, etype, [obj]).get(int(obj.id))
        subject = _subject(ref)
        if row is None:
            return f"Nothing scores {kind}s any more, so I left the score of {subject} as it was."
        new = f"{row.score} ({row.grade})" if row.grade else str(row.score)
        if old is None:
            change = f"now {new}"
        elif old == (row.score, row.grade):
            change = f"still {new}"
        else:
            change = f"{old[0]} ({old[1]}) → {new}" if old[1] else f"{old[0]} → {new}"
        return f"Recomputed the score of {subject}: {change}. {reasons_text(row)}"
