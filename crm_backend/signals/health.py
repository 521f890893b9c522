"""Customer health (0–100) and churn risk (0..1) per account, from a transparent weighted formula.

health = clamp(50 + revenue trend + activity recency + open tickets + sentiment + open pipeline, 0, 100)

| factor            | effect (points)                                                                 |
|-------------------|---------------------------------------------------------------------------------|
| revenue trend     | round(20 * (recent - previous) / max(recent, previous)); won amounts closed in the
|                   | last 182 days vs the 182 before; 0 with no won deals in either                  |
| activity recency  | round(15 - 40 * min(1, days since last activity / 90)); -25 with no activity    |
| open tickets      | -(5 per open ticket + 3 more per one open longer than 14 days), at most -25     |
| sentiment         | round(15 * average conversation sentiment (-1..1)); 0 without conversations     |
| open pipeline     | +10 with at least one open deal                                                  |

churn risk = 1 / (1 + exp((health - 50) / 10)): 0.5 at 50, 0.05 at 80, 0.95 at 20.

Every score is stored with its drivers (`Account.health_explanation`), so a rep sees why.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, exists, func, or_, select

from crm_backend import events
from crm_backend.facts import facts_for
from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity
from crm_backend.models.conversations import Conversation
from crm_backend.models.deals import Deal, DealStage
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.store import UnitOfWork

BASE = 50
WINDOW = dt.timedelta(days=182)
REVENUE_POINTS = 20
RECENCY_BEST, RECENCY_SPAN, RECENCY_DAYS, RECENCY_NONE = 15, 40, 90, -25
TICKET_POINTS, OLD_TICKET_POINTS, OLD_TICKET_DAYS, TICKET_FLOOR = 5, 3, 14, -25
SENTIMENT_POINTS = 15
PIPELINE_POINTS = 10
PAGE = 500
ORIGIN = "health"
OPEN_TICKETS = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


@dataclass(frozen=True)
class Features:
    """What health is computed from, for one account."""

    recent_won: float
    previous_won: float
    last_activity_at: dt.datetime | None
    open_tickets: int
    old_open_tickets: int
    sentiment: float | None
    open_deals: int
    open_pipeline: float


@dataclass(frozen=True)
class Health:
    score: int
    churn_risk: float
    drivers: list[dict[str, Any]]
    computed_at: dt.datetime

    def explanation(self) -> dict[str, Any]:
        return {
            "base": BASE,
            "drivers": self.drivers,
            "computed_at": self.computed_at.isoformat(),
        }


def _driver(factor: str, value: Any, effect: int, text: str) -> dict[str, Any]:
    return {"factor": factor, "value": value, "effect": effect, "text": text}


def _revenue(f: Features) -> dict[str, Any]:
    top = max(f.recent_won, f.previous_won)
    value = {"last_6_months": round(f.recent_won, 2), "previous_6_months": round(f.previous_won, 2)}
    if top <= 0:
        return _driver("revenue_trend", value, 0, "No won deals in the last 12 months")
    trend = (f.recent_won - f.previous_won) / top
    effect = round(REVENUE_POINTS * trend)
    text = f"Won {f.recent_won:,.0f} in the last 6 months vs {f.previous_won:,.0f} in the 6 before"
    return _driver("revenue_trend", value, effect, text)


def _recency(f: Features, now: dt.datetime) -> dict[str, Any]:
    if f.last_activity_at is None:
        return _driver("activity_recency", None, RECENCY_NONE, "No activity recorded")
    days = max(0, (now - f.last_activity_at).days)
    effect = round(RECENCY_BEST - RECENCY_SPAN * min(1.0, days / RECENCY_DAYS))
    return _driver("activity_recency", days, effect, f"Last activity {days} days ago")


def _tickets(f: Features) -> dict[str, Any]:
    effect = max(TICKET_FLOOR, -(TICKET_POINTS * f.open_tickets + OLD_TICKET_POINTS * f.old_open_tickets))
    value = {"open": f.open_tickets, "older_than_14_days": f.old_open_tickets}
    if not f.open_tickets:
        return _driver("open_tickets", value, 0, "No open support tickets")
    return _driver(
        "open_tickets",
        value,
        effect,
        f"{_count(f.open_tickets, 'open support ticket')}, {f.old_open_tickets} older than {OLD_TICKET_DAYS} days",
    )


def _sentiment(f: Features) -> dict[str, Any]:
    if f.sentiment is None:
        return _driver("sentiment", None, 0, "No conversations with a sentiment yet")
    return _driver(
        "sentiment",
        round(f.sentiment, 3),
        round(SENTIMENT_POINTS * f.sentiment),
        f"Average conversation sentiment {f.sentiment:+.2f}",
    )


def _pipeline(f: Features) -> dict[str, Any]:
    value = {"open_deals": f.open_deals, "open_pipeline": round(f.open_pipeline, 2)}
    if not f.open_deals:
        return _driver("open_pipeline", value, 0, "No open deals")
    return _driver(
        "open_pipeline", value, PIPELINE_POINTS, f"{_count(f.open_deals, 'open deal')} worth {f.open_pipeline:,.0f}"
    )


def churn_risk(score: int) -> float:
    return round(1 / (1 + math.exp((score - BASE) / 10)), 3)


def assess(features: Features, now: dt.datetime) -> Health:
    """The health score, churn risk and drivers of one account (pure: the formula in the docstring)."""
    drivers = [_revenue(features), _recency(features, now), _tickets(features), _sentiment(features)]
    drivers.append(_pipeline(features))
    score = max(0, min(100, BASE + sum(int(d["effect"]) for d in drivers)))
    return Health(score, churn_risk(score), drivers, now)


def as_utc(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value if isinstance(value, dt.datetime) else None


def features_for(uow: UnitOfWork, accounts: Sequence[Account], now: dt.datetime) -> dict[int, Features]:
    """The health inputs of `accounts`, in a handful of grouped queries for the whole batch."""
    facts = facts_for(uow, "account", accounts)
    ids = list(facts)
    session = uow.session
    split = now - WINDOW
    won = (
        select(
            Deal.account_id,
            func.sum(case((Deal.closed_at >= split, Deal.amount), else_=0)),
            func.sum(case((Deal.closed_at < split, Deal.amount), else_=0)),
        )
        .where(
            Deal.account_id.in_(ids),
            Deal.deleted_at.is_(None),
            Deal.stage == DealStage.CLOSED_WON,
            Deal.closed_at >= now - 2 * WINDOW,
            Deal.closed_at <= now,
        )
        .group_by(Deal.account_id)
    )
    revenue = {rid: (float(r or 0), float(p or 0)) for rid, r, p in session.execute(won)}
    old = (
        select(Ticket.account_id, func.count(Ticket.id))
        .where(
            Ticket.account_id.in_(ids),
            Ticket.deleted_at.is_(None),
            Ticket.status.in_(OPEN_TICKETS),
            Ticket.created_at < now - dt.timedelta(days=OLD_TICKET_DAYS),
        )
        .group_by(Ticket.account_id)
    )
    old_tickets = {rid: int(n) for rid, n in session.execute(old)}
    out: dict[int, Features] = {}
    for rid, f in facts.items():
        recent, previous = revenue.get(rid, (0.0, 0.0))
        out[rid] = Features(
            recent_won=recent,
            previous_won=previous,
            last_activity_at=as_utc(f["last_activity_at"]),
            open_tickets=int(f["open_ticket_count"]),
            old_open_tickets=old_tickets.get(rid, 0),
            sentiment=f["conversation_sentiment"],
            open_deals=int(f["open_deal_count"]),
            open_pipeline=float(f["open_pipeline"]),
        )
    return out


def recompute(uow: UnitOfWork, accounts: Sequence[Account], now: dt.datetime) -> int:
    """Compute and store the health of `accounts` (a page at a time); returns how many were stored."""
    done = 0
    with events.origin(uow.session, ORIGIN):
        for start in range(0, len(accounts), PAGE):
            page = accounts[start : start + PAGE]
            features = features_for(uow, page, now)
            for account in page:
                health = assess(features[account.id], now)
                keep = {k: v for k, v in (account.health_explanation or {}).items() if k == "segment"}
                account.health_score = health.score
                account.churn_risk = health.churn_risk
                account.health_explanation = {**health.explanation(), **keep}
                account.health_updated_at = now
                done += 1
    return done


def _changed_since(model: Any) -> Any:
    return exists().where(model.account_id == Account.id, model.updated_at > Account.health_updated_at)


def stale_ids(uow: UnitOfWork, now: dt.datetime, max_age: dt.timedelta) -> list[int]:
    """Accounts whose health is missing, older than `max_age`, or older than a change to its inputs."""
    stmt = (
        select(Account.id)
        .where(
            Account.deleted_at.is_(None),
            or_(
                Account.health_updated_at.is_(None),
                Account.health_updated_at < now - max_age,
                *(_changed_since(m) for m in (Deal, Ticket, Activity, Conversation)),
            ),
        )
        .order_by(Account.id)
    )
    return list(uow.session.scalars(stmt))


def recompute_ids(uow: UnitOfWork, ids: Sequence[int], now: dt.datetime) -> int:
    done = 0
    for start in range(0, len(ids), PAGE):
        chunk = ids[start : start + PAGE]
        accounts = list(uow.session.scalars(select(Account).where(Account.id.in_(chunk)).order_by(Account.id)))
        done += recompute(uow, accounts, now)
    return done


def recompute_all(uow: UnitOfWork, now: dt.datetime) -> int:
    ids = list(uow.session.scalars(select(Account.id).where(Account.deleted_at.is_(None)).order_by(Account.id)))
    return recompute_ids(uow, ids, now)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
