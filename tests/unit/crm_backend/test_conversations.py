from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_backend.errors import NotFound, ValidationFailed
from crm_backend.models import Conversation
from crm_backend.services.conversations import claim_conversation
from tests.conftest import Demo


def claim(demo: Demo, username: str, conversation_id: str | None, channel: str = "api") -> str:
    with demo.store.unit_of_work(actor=demo.actor(username)) as uow:
        return claim_conversation(uow, conversation_id, channel)


def test_new_conversation_gets_a_channel_scoped_id_owned_by_the_user(demo: Demo) -> None:
    cid = claim(demo, "alice", None)
    assert cid.startswith("api-")
    with demo.store.unit_of_work() as uow:
        row = uow.session.get(Conversation, cid)
        assert row is not None and row.user_id == demo.actor("alice").user_id


def test_owner_can_continue_their_conversation(demo: Demo) -> None:
    cid = claim(demo, "alice", "my-thread-1")
    assert claim(demo, "alice", cid) == cid


def test_another_users_conversation_looks_like_it_does_not_exist(demo: Demo) -> None:
    cid = claim(demo, "alice", "private-thread")
    with pytest.raises(NotFound):
        claim(demo, "bob", cid)


def test_a_conversation_cannot_move_to_another_channel(demo: Demo) -> None:
    cid = claim(demo, "alice", "thread-x")
    with pytest.raises(NotFound):
        claim(demo, "alice", cid, channel="slack")


@pytest.mark.parametrize("bad", ["", "has space", "x" * 81, "semi;colon", "../etc"])
def test_malformed_conversation_ids_are_rejected_and_nothing_is_stored(demo: Demo, bad: str) -> None:
    with pytest.raises(ValidationFailed):
        claim(demo, "alice", bad)
    with demo.store.unit_of_work() as uow:
        assert uow.session.scalars(select(Conversation)).all() == []
