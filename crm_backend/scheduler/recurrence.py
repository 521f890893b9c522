"""Keeping recurring activities expanded ahead of time: every active series has its occurrences as
Activity rows up to the horizon (see `crm_backend.services.calendar.expand_series`)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from crm_backend.models.activities import RecurringActivity
from crm_backend.services.calendar import expand_series
from crm_backend.store import Store

log = logging.getLogger(__name__)


def expand_due(store: Store, now: dt.datetime, horizon: dt.timedelta, *, batch: int = 200) -> int:
    """Expand every active series whose next occurrence falls inside the horizon; returns how many
    occurrences were created. One transaction per batch of series."""
    created = 0
    last_id = 0
    while True:
        with store.unit_of_work(None, "system") as uow:
            series = list(
                uow.session.scalars(
                    select(RecurringActivity)
                    .where(
                        RecurringActivity.is_active.is_(True),
                        RecurringActivity.id > last_id,
                        RecurringActivity.next_occurrence_at <= now + horizon,  # NULL: the series has ended
                    )
                    .order_by(RecurringActivity.id)
                    .limit(batch)
                )
            )
            for item in series:
                created += expand_series(uow, item, now, horizon)
        if len(series) < batch:
            return created
        last_id = series[-1].id
