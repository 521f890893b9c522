"""Storing a signal once and telling its owner: the one way a detector's candidate becomes a
`SalesSignal` and a feed entry."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_backend import events, notifications
from crm_backend.models.feeds import SalesSignal
from crm_backend.signals.detectors import Candidate
from crm_backend.store import UnitOfWork

ORIGIN = "signals"


def emit(uow: UnitOfWork, candidate: Candidate) -> SalesSignal | None:
    """Insert the signal and post it to the owner's feed; None when its `dedupe_key` was used already.

    A concurrent twin (another transaction emitting the same fact) loses on the unique key inside a
    savepoint, so the caller's transaction goes on.
    """
    session = uow.session
    with events.origin(session, ORIGIN):
        if session.scalar(select(SalesSignal.id).where(SalesSignal.dedupe_key == candidate.dedupe_key)) is not None:
            return None
        signal = _signal(candidate)
        try:
            with session.begin_nested():
                session.add(signal)
        except IntegrityError:
            return None
        notifications.notify_many(uow, [_message(candidate, signal)])
    return signal


def emit_many(uow: UnitOfWork, candidates: Sequence[Candidate]) -> int:
    """Emit candidates whose keys the caller found unused, in one savepoint (the sweep's bulk path);
    if a concurrent twin took a key meanwhile, fall back to one savepoint per signal."""
    if not candidates:
        return 0
    session = uow.session
    with events.origin(session, ORIGIN):
        signals = [_signal(c) for c in candidates]
        try:
            with session.begin_nested():
                session.add_all(signals)
        except IntegrityError:
            return sum(1 for c in candidates if emit(uow, c) is not None)
        session.flush()  # the signals' ids go into their notifications
        notifications.notify_many(uow, [_message(c, s) for c, s in zip(candidates, signals, strict=True)])
    return len(signals)


def _signal(candidate: Candidate) -> SalesSignal:
    return SalesSignal(
        owner_id=candidate.owner_id,
        entity_type=candidate.entity_type,
        entity_id=candidate.entity_id,
        category=candidate.category,
        signal_type=candidate.signal_type,
        title=candidate.title[:300],
        data=candidate.data,
        confidence=candidate.confidence,
        account_id=candidate.account_id,
        dedupe_key=candidate.dedupe_key,
    )


def _message(candidate: Candidate, signal: SalesSignal) -> notifications.Message:
    """The signal's feed entry for its owner, and its queued delivery (once per signal)."""
    return notifications.Message(
        candidate.owner_id,
        kind="signal",
        title=candidate.title,
        body=_body(candidate),
        entity_type=candidate.entity_type,
        entity_id=candidate.entity_id,
        data={"signal_id": signal.id, "signal_type": candidate.signal_type, "category": candidate.category.value},
        dedupe_key=f"signal:{candidate.dedupe_key}",
        important=candidate.confidence >= 0.8,
    )


def _body(candidate: Candidate) -> str:
    return f"{candidate.category.value} signal ({candidate.signal_type}), confidence {candidate.confidence:.0%}."
