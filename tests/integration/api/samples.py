"""A valid creation payload for every collection, given the ids of records it may link to.

Used by the generated permission matrix and the OpenAPI conformance test; a collection added to
the registry without a sample here makes those tests fail, so none is ever left untested.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Refs = dict[str, int]

SAMPLES: dict[str, Callable[[Refs, int], dict[str, Any]]] = {
    "leads": lambda r, n: {
        "first_name": "Lee",
        "last_name": f"Sample{n}",
        "email": f"lead{n}@example.com",
        "company": f"Sample Co {n}",
    },
    "accounts": lambda r, n: {"name": f"Sample Account {n}", "type": "Customer", "industry": "Retail"},
    "contacts": lambda r, n: {
        "first_name": "Cora",
        "last_name": f"Sample{n}",
        "email": f"contact{n}@example.com",
        "account_id": r["account"],
    },
    "deals": lambda r, n: {"name": f"Sample deal {n}", "account_id": r["account"], "amount": "1000.00"},
    "sales-forecasts": lambda r, n: {
        "name": f"Q{n % 4 + 1} forecast",
        "period_type": "Quarterly",
        "period_start": "2027-01-01",
        "period_end": "2027-03-31",
        "forecast_amount": "250000.00",
    },
    "territory-forecasts": lambda r, n: {
        "territory_id": r["territory"],
        "period_type": "Monthly",
        "period_start": "2027-01-01",
        "period_end": "2027-01-31",
        "forecast_amount": "50000.00",
    },
    "territories": lambda r, n: {"name": f"Sample territory {n}", "type": "Geographic", "country": "DE"},
    "macros": lambda r, n: {
        "name": f"Stalled deal nudge {n}",
        "entity_type": "deal",
        "conditions": {"all": [{"field": "stage", "op": "eq", "value": "Proposal"}]},
        "actions": [{"type": "create_task", "subject": "Follow up"}],
    },
    "feeds": lambda r, n: {"type": "Notification", "title": f"Heads up {n}"},
    "sales-signals": lambda r, n: {
        "entity_type": "account",
        "entity_id": r["account"],
        "category": "Positive",
        "signal_type": "engagement",
        "title": f"Opened proposal {n}",
    },
    "documents": lambda r, n: {"name": f"Proposal {n}.pdf", "type": "Proposal"},
    "activities": lambda r, n: {"type": "Call", "subject": f"Intro call {n}", "account_id": r["account"]},
    "reminders": lambda r, n: {"message": f"Call back {n}", "remind_at": "2027-01-05T09:00:00Z"},
    "recurring-activities": lambda r, n: {
        "subject": f"Pipeline review {n}",
        "pattern": "Weekly",
        "weekdays": ["MO"],
        "starts_at": "2027-01-04T09:00:00Z",
    },
    "calendar-bookings": lambda r, n: {
        "title": f"Demo {n}",
        "start_at": "2027-01-06T10:00:00Z",
        "end_at": "2027-01-06T11:00:00Z",
    },
    "currencies": lambda r, n: {
        "code": ["CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF"][n % 7],
        "name": "Sample currency",
        "symbol": "¤",
        "rate_to_base": "0.5",
    },
    "social-integrations": lambda r, n: {"name": f"LinkedIn {n}", "platform": "LinkedIn", "api_key": "k"},
    "scoring-rules": lambda r, n: {
        "name": f"Website source {n}",
        "entity_type": "lead",
        "points": 10,
        "conditions": {"field": "source", "op": "eq", "value": "Website"},
    },
    "multiple-scoring-rules": lambda r, n: {
        "name": f"Lead grading {n}",
        "entity_type": "lead",
        "thresholds": {"hot": 70, "warm": 40},
    },
    "tickets": lambda r, n: {"subject": f"Cannot log in {n}", "priority": "High"},
    "campaigns": lambda r, n: {"name": f"Spring webinar {n}", "type": "Webinar"},
    "users": lambda r, n: {
        "username": f"sample{n}",
        "full_name": "Sample User",
        "email": f"user{n}@example.com",
        "role": "rep",
    },
    "teams": lambda r, n: {"name": f"Sample team {n}"},
    "tags": lambda r, n: {"name": f"tag-{n}"},
    "notes": lambda r, n: {"entity_type": "accounts", "entity_id": r["account"], "body": f"Met at the fair {n}"},
    "custom-fields": lambda r, n: {
        "entity_type": "leads",
        "name": f"field_{n}",
        "label": "Sample",
        "field_type": "text",
    },
}
