"""Linking chat accounts to CRM users, team rooms, and the gateway's per-conversation bookkeeping."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_backend.models import ChannelIdentity, Conversation, LinkCode, OfferedButton
from crm_backend.models.users import Team
from crm_backend.services import conversations, identities
from tests.conftest import Demo

MINUTES = dt.timedelta(minutes=15)


def issue(demo: Demo, username: str, ttl: dt.timedelta = MINUTES) -> str:
    with demo.store.unit_of_work(actor=demo.actor(username)) as uow:
        return identities.issue_link_code(uow, ttl).code


def redeem(demo: Demo, code: str, external_id: str = "U1", channel: str = "slack", workspace: str = "T1") -> int:
    with demo.store.unit_of_work(channel=channel) as uow:
        return identities.redeem_link_code(uow, code, channel, external_id, workspace).user_id


def linked(demo: Demo, external_id: str = "U1", channel: str = "slack", workspace: str = "T1") -> int | None:
    with demo.store.unit_of_work() as uow:
        actor = identities.actor_for_identity(uow, channel, external_id, workspace)
        return actor.user_id if actor else None


def test_a_code_links_the_chat_account_to_its_user_once(demo: Demo) -> None:
    code = issue(demo, "alice")
    assert linked(demo) is None
    assert redeem(demo, code.lower().replace("-", "")) == demo.actor("alice").user_id
    assert linked(demo) == demo.actor("alice").user_id
    with pytest.raises(NotFound):  # the code worked once
        redeem(demo, code, external_id="U2")
    assert linked(demo, "U2") is None
    with demo.store.unit_of_work() as uow:  # only the digest is kept
        assert code not in {row.code_hash for row in uow.session.scalars(select(LinkCode))}


def test_an_expired_code_links_nothing(demo: Demo) -> None:
    code = issue(demo, "alice", dt.timedelta(minutes=15))
    with demo.store.unit_of_work() as uow:
        for row in uow.session.scalars(select(LinkCode)):
            row.expires_at = row.created_at - dt.timedelta(seconds=1)
    with pytest.raises(NotFound):
        redeem(demo, code)
    assert linked(demo) is None


def test_an_account_linked_to_someone_else_is_not_taken_over(demo: Demo) -> None:
    redeem(demo, issue(demo, "alice"))
    with pytest.raises(Conflict):
        redeem(demo, issue(demo, "bob"))
    assert linked(demo) == demo.actor("alice").user_id


def test_the_same_user_id_in_another_workspace_is_another_account(demo: Demo) -> None:
    redeem(demo, issue(demo, "alice"), workspace="T1")
    assert linked(demo, workspace="T2") is None


def test_unlinking_takes_effect_at_once_and_only_the_owner_or_an_admin_may(demo: Demo) -> None:
    redeem(demo, issue(demo, "alice"))
    with demo.store.unit_of_work() as uow:
        identity_id = uow.session.scalars(select(ChannelIdentity.id)).one()
    with pytest.raises(NotFound), demo.store.unit_of_work(actor=demo.actor("bob")) as uow:
        identities.unlink(uow, identity_id)
    assert linked(demo) is not None
    with demo.store.unit_of_work(actor=demo.actor("alice")) as uow:
        assert [i.external_id for i in identities.my_identities(uow)] == ["U1"]
        identities.unlink(uow, identity_id)
    assert linked(demo) is None


def test_only_an_admin_issues_codes_for_others(demo: Demo) -> None:
    with pytest.raises(PermissionDenied), demo.store.unit_of_work(actor=demo.actor("bob")) as uow:
        identities.issue_link_code(uow, MINUTES, demo.actor("alice").user_id)
    with demo.store.unit_of_work(actor=demo.actor("admin")) as uow:
        code = identities.issue_link_code(uow, MINUTES, demo.actor("alice").user_id).code
    assert redeem(demo, code) == demo.actor("alice").user_id


def test_team_rooms_are_marked_by_admins_and_make_replies_public_only_for_that_teams_reps(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        east = uow.session.scalars(select(Team.id).where(Team.name == "East")).one()
    with pytest.raises(PermissionDenied), demo.store.unit_of_work(actor=demo.actor("alice")) as uow:
        identities.mark_team_room(uow, "slack", "T1", "C1", east)
    with pytest.raises(ValidationFailed), demo.store.unit_of_work(actor=demo.actor("admin")) as uow:
        identities.mark_team_room(uow, "irc", "T1", "C1", 9999)
    with demo.store.unit_of_work(actor=demo.actor("admin")) as uow:
        identities.mark_team_room(uow, "slack", "T1", "C1", east)
    with pytest.raises(Conflict), demo.store.unit_of_work(actor=demo.actor("admin")) as uow:
        identities.mark_team_room(uow, "slack", "T1", "C1", east)
    with demo.store.unit_of_work() as uow:
        room_team = identities.room_team(uow, "slack", "T1", "C1")
        assert identities.room_team(uow, "slack", "T1", "C2") is None
    assert identities.may_post_publicly(demo.actor("alice"), room_team)
    assert not identities.may_post_publicly(demo.actor("carlos"), room_team)  # West
    assert not identities.may_post_publicly(demo.actor("maria"), room_team)  # a manager sees territories too
    assert not identities.may_post_publicly(demo.actor("alice"), None)


def test_only_the_newest_buttons_of_a_conversation_can_be_clicked(demo: Demo) -> None:
    with demo.store.unit_of_work(actor=demo.actor("alice")) as uow:
        cid = conversations.claim_conversation(uow, "slack-thread", "slack")
        old_yes, _ = conversations.offer_buttons(uow, cid, [("Yes", "/affirm"), ("No", "/deny")])
        other = conversations.claim_conversation(uow, "slack-other", "slack")
        foreign = conversations.offer_buttons(uow, other, [("Yes", "/affirm")])[0]
    with demo.store.unit_of_work() as uow:
        clicked = conversations.clicked_button(uow, cid, old_yes, dt.timedelta(days=1))
        assert clicked is not None and clicked.payload == "/affirm"
        assert conversations.clicked_button(uow, cid, foreign, dt.timedelta(days=1)) is None
        assert conversations.clicked_button(uow, cid, "made-up", dt.timedelta(days=1)) is None
        assert conversations.clicked_button(uow, cid, old_yes, dt.timedelta(days=1)) is None  # used up
    with demo.store.unit_of_work() as uow:
        conversations.offer_buttons(uow, cid, [("Acme", '/choose_record{"ordinal":"1"}')])
    with demo.store.unit_of_work() as uow:
        assert conversations.clicked_button(uow, cid, old_yes, dt.timedelta(days=1)) is None
        assert uow.session.scalars(select(OfferedButton).where(OfferedButton.superseded_at.is_(None))).all()


def test_a_platform_event_is_taken_once(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        assert conversations.first_time(uow, "slack", "Ev1")
        assert not conversations.first_time(uow, "slack", "Ev1")
        assert conversations.first_time(uow, "telegram", "Ev1")
    with demo.store.unit_of_work() as uow:
        assert not conversations.first_time(uow, "slack", "Ev1")


def test_event_ids_are_forgotten_after_a_day(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        assert conversations.first_time(uow, "slack", "EvOld")
    later = dt.datetime.now(dt.UTC) + conversations.EVENT_MEMORY + dt.timedelta(minutes=1)
    assert conversations.forget_old_events(demo.store, dt.datetime.now(dt.UTC)) == 0
    assert conversations.forget_old_events(demo.store, later) == 1
    with demo.store.unit_of_work() as uow:
        assert conversations.first_time(uow, "slack", "EvOld")


def test_a_visitor_conversation_belongs_to_its_visitor_only(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        conversations.claim_visitor_conversation(uow, "web-abc", "visitor-1", "web")
        conversations.record_turn(uow, "web-abc", "user", "hi")
        assert not conversations.has_bot_turn(uow, "web-abc")
        conversations.record_turn(uow, "web-abc", "bot", "Hello!")
        assert conversations.has_bot_turn(uow, "web-abc")
    with pytest.raises(NotFound), demo.store.unit_of_work() as uow:
        conversations.claim_visitor_conversation(uow, "web-abc", "visitor-2", "web")
    with demo.store.unit_of_work() as uow:
        row = uow.session.get(Conversation, "web-abc")
        assert row is not None and row.user_id is None and row.visitor_id == "visitor-1"
        assert [t.text for t in conversations.recent_turns(uow, "web-abc")] == ["hi", "Hello!"]
