"""Re-scoring a whole entity type after a rule change, without holding up the change.

A rule or rule-set change re-scores its entity type in the same transaction while the type is
small (`INLINE_LIMIT` records); above that it leaves a `RescoreRequest` and the scheduler's
`run(store, now)` re-scores the type in batches of its own transactions. A request made again
while one is being worked on (the rules changed again) is kept and runs once more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select

from crm_backend import facts
from crm_backend.models.automation import EntityType, RescoreRequest
from crm_backend.scoring import engine, model
from crm_backend.scoring.rules import rule_book
from crm_backend.store import Store, UnitOfWork

INLINE_LIMIT = 2_000
BATCH = engine.BATCH


def rescore_type(uow: UnitOfWork, entity_type: EntityType) -> None:
    """Re-score every record of `entity_type` now when it is small, else ask the scheduler to."""
    book = rule_book(uow, entity_type)
    if not engine.configured(book, model.current(engine.models_dir(uow), entity_type)):
        engine.clear_scores(uow, entity_type)
        return
    record_model = facts.MODELS[entity_type]
    total = uow.session.scalar(select(func.count()).select_from(record_model)) or 0
    if total <= INLINE_LIMIT:
        engine.score_ids(uow, entity_type, engine.all_ids(uow, entity_type), book=book)
        return
    request = uow.session.get(RescoreRequest, entity_type)
    if request is None:
        uow.session.add(RescoreRequest(entity_type=entity_type))
    else:
        request.requested_at = dt.datetime.now(dt.UTC)


def pending(uow: UnitOfWork) -> Sequence[RescoreRequest]:
    return list(uow.session.scalars(select(RescoreRequest).order_by(RescoreRequest.requested_at)))


def run(store: Store, now: dt.datetime) -> int:
    """The scheduler job: carry out every pending request; returns how many records were re-scored."""
    with store.unit_of_work(None, "system", read_only=True) as uow:
        requests = [(r.entity_type, r.requested_at) for r in pending(uow)]
    scored = 0
    for entity_type, requested_at in requests:
        done = 0
        for done in engine.score_all(store, entity_type, batch=BATCH):  # noqa: B007 - the running count
            pass
        scored += done
        with store.unit_of_work(None, "system") as uow:  # done, unless it was asked for again meanwhile
            uow.session.execute(
                delete(RescoreRequest).where(
                    RescoreRequest.entity_type == entity_type, RescoreRequest.requested_at == requested_at
                )
            )
    return scored
