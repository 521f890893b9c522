"""The facts conditions test: a record's own columns plus related data, read for a whole batch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_backend import facts
from crm_backend.models import (
    Account,
    Activity,
    ActivityStatus,
    ActivityType,
    Contact,
    Conversation,
    Deal,
    Lead,
    Tag,
    Tagging,
    Ticket,
)
from tests.conftest import Demo

WHEN = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def test_lead_facts_count_activities_tags_bant_and_sentiment(demo: Demo) -> None:
    alice = demo.actor("alice")
    with demo.store.unit_of_work(alice) as uow:
        hot = Lead(last_name="Ng", company="Nimbus", owner_id=alice.user_id, budget=50000, need="CRM", employees=80)
        cold = Lead(last_name="Oz", owner_id=alice.user_id)
        uow.session.add_all([hot, cold])
        uow.session.flush()
        uow.session.add_all(
            [
                Activity(
                    type=ActivityType.CALL,
                    subject="intro",
                    owner_id=alice.user_id,
                    lead_id=hot.id,
                    status=ActivityStatus.COMPLETED,
                    completed_at=WHEN,
                ),
                Activity(
                    type=ActivityType.TASK,
                    subject="send deck",
                    owner_id=alice.user_id,
                    lead_id=hot.id,
                    start_at=WHEN - dt.timedelta(days=3),
                ),
                Tagging(tag_id=_tag(uow.session, "vip"), entity_type="lead", entity_id=hot.id),
                Conversation(id="c-1", user_id=alice.user_id, channel="web", lead_id=hot.id, sentiment_score=-0.5),
                Conversation(id="c-2", user_id=alice.user_id, channel="web", lead_id=hot.id, sentiment_score=0.1),
            ]
        )
        uow.session.flush()
        got = facts.facts_for(uow, "lead", [hot, cold])
    assert got[hot.id]["company"] == "Nimbus" and got[hot.id]["budget"] == 50000.0
    assert got[hot.id]["activity_count"] == 2 and got[hot.id]["open_task_count"] == 1
    assert got[hot.id]["last_activity_at"] == WHEN
    assert got[hot.id]["tags"] == ["vip"]
    assert got[hot.id]["bant_known"] == 2
    assert round(got[hot.id]["conversation_sentiment"], 2) == -0.2
    assert got[cold.id]["activity_count"] == 0 and got[cold.id]["last_activity_at"] is None
    assert got[cold.id]["tags"] == [] and got[cold.id]["conversation_sentiment"] is None
    assert got[hot.id]["status"] == "New"  # enums as the seeds' words


def test_account_facts_sum_deals_by_outcome_and_count_open_tickets(demo: Demo) -> None:
    with demo.store.unit_of_work(demo.actor("admin")) as uow:
        acme = uow.session.scalars(select(Account).where(Account.name == "Acme Corporation")).one()
        uow.session.add(Ticket(subject="Broken", owner_id=acme.owner_id, account_id=acme.id))
        uow.session.flush()
        deals = list(uow.session.scalars(select(Deal).where(Deal.account_id == acme.id)))
        got = facts.facts_of(uow, "account", acme)
        expected_open = sum(float(d.amount) for d in deals if d.stage.is_open)
        expected_won = sum(float(d.amount) for d in deals if d.stage.value == "Closed Won")
        contacts = len(list(uow.session.scalars(select(Contact).where(Contact.account_id == acme.id))))
    assert got["open_pipeline"] == expected_open and got["won_amount"] == expected_won == 9000.0
    assert got["open_deal_count"] == sum(1 for d in deals if d.stage.is_open)
    assert got["open_ticket_count"] == 1
    assert got["contact_count"] == contacts


def test_deal_facts_include_its_account_and_owner(demo: Demo) -> None:
    with demo.store.unit_of_work(demo.actor("admin"), read_only=True) as uow:
        deal = uow.session.scalars(select(Deal).where(Deal.name == "Globex - Data warehouse")).one()
        got = facts.facts_of(uow, "deal", deal)
    assert got["account.name"] == "Globex" and got["account.industry"] == "Energy"
    assert got["owner.username"] == "bob" and got["stage"] == "Prospecting"


def test_fields_list_every_fact_with_its_kind(demo: Demo) -> None:
    lead = facts.fields("lead")
    assert lead["budget"] == "number" and lead["created_at"] == "date" and lead["has_authority"] == "bool"
    assert lead["tags"] == "list" and lead["bant_known"] == "number" and "email_key" not in lead
    assert facts.fields("deal")["account.industry"] == "text"
    assert facts.fields("account")["open_ticket_count"] == "number"


def _tag(session: object, name: str) -> int:
    tag = Tag(name=name)
    session.add(tag)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return tag.id
