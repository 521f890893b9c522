"""Deal and pipeline skills."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from actions.base import CrmAction, Turn
from actions.replies import ActionResult, Reply, day, money
from crm_backend.services import deals
from crm_backend.services.deals import DealSummary
from crm_backend.store import UnitOfWork

MAX_LISTED = 10  # a chat reply, not a report: the soonest to close, then how many more


def open_deals_text(items: list[DealSummary]) -> str:
    """The count and total of all of them; the first `MAX_LISTED` (soonest close first) one per line."""
    if not items:
        return "You have no open deals right now."
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for d in items:
        totals[d.currency] += d.amount
    total = " + ".join(money(amount, cur) for cur, amount in sorted(totals.items(), key=lambda kv: -kv[1]))
    noun = "deal" if len(items) == 1 else "deals"
    lines = [f"You have {len(items)} open {noun} ({total}):"]
    lines += [
        f"{n}. {d.name} ({d.account_name}): {d.stage}, {money(d.amount, d.currency)}, "
        f"{d.probability}%, {'closes ' + day(d.expected_close_date) if d.expected_close_date else day(None)}"
        for n, d in enumerate(items[:MAX_LISTED], start=1)
    ]
    if len(items) > MAX_LISTED:
        lines.append(f"…and {len(items) - MAX_LISTED} more, closing later.")
    return "\n".join(lines)


class ActionListOpenDeals(CrmAction):
    """'Show my open deals': the acting rep's own deals that are not closed."""

    def name(self) -> str:
        return "action_list_open_deals"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        return ActionResult([Reply(open_deals_text(deals.list_open_deals(uow, limit=None)))])
