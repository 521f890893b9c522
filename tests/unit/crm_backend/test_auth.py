from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_backend.errors import AuthenticationFailed
from crm_backend.models import ApiToken, User
from crm_backend.models.base import utcnow
from crm_backend.services import auth
from tests.conftest import Demo

SECRET = "test-secret"


def test_token_authenticates_as_its_user_and_records_use(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        actor = auth.authenticate_token(uow, demo.tokens["bob"])
    assert actor.username == "bob"
    with demo.store.unit_of_work() as uow:
        row = uow.session.scalar(select(ApiToken).join(User).where(User.username == "bob"))
        assert row is not None and row.last_used_at is not None


def test_only_a_digest_of_the_token_is_stored(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        stored = uow.session.scalars(select(ApiToken.token_hash)).all()
    assert demo.tokens["alice"] not in stored
    assert all(len(h) == 64 for h in stored)


@pytest.mark.parametrize("token", ["", "crm_unknown", "Bearer x", "x" * 500])
def test_unknown_tokens_are_refused(demo: Demo, token: str) -> None:
    with pytest.raises(AuthenticationFailed), demo.store.unit_of_work() as uow:
        auth.authenticate_token(uow, token)


def test_revoked_token_is_refused(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        auth.revoke_token(uow, demo.tokens["alice"])
    with pytest.raises(AuthenticationFailed), demo.store.unit_of_work() as uow:
        auth.authenticate_token(uow, demo.tokens["alice"])


def test_expired_token_is_refused(demo: Demo) -> None:
    alice = demo.actor("alice")
    with demo.store.unit_of_work() as uow:
        token = auth.issue_token(uow, alice.user_id, "short", ttl=timedelta(seconds=30))
        row = uow.session.scalar(select(ApiToken).where(ApiToken.name == "short"))
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(AuthenticationFailed), demo.store.unit_of_work() as uow:
        auth.authenticate_token(uow, token)


def test_deactivated_users_token_is_refused(demo: Demo) -> None:
    with demo.store.unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == "carlos"))
        assert user is not None
        user.is_active = False
    with pytest.raises(AuthenticationFailed), demo.store.unit_of_work() as uow:
        auth.authenticate_token(uow, demo.tokens["carlos"])


def test_signed_identity_round_trips(demo: Demo) -> None:
    block = auth.sign_identity(SECRET, demo.actor("alice"), "api", "conv-1")
    claims = auth.verify_identity(SECRET, block, "conv-1")
    assert (claims.user_id, claims.channel, claims.conversation_id) == (demo.actor("alice").user_id, "api", "conv-1")


def test_a_spoken_message_carries_its_transcript_and_audits_with_a_voice_flag(demo: Demo) -> None:
    typed = auth.verify_identity(SECRET, auth.sign_identity(SECRET, demo.actor("alice"), "telegram", "c"), "c")
    assert typed.heard is None and typed.audit_channel == "telegram"
    block = auth.sign_identity(SECRET, demo.actor("alice"), "telegram", "c", heard="log a call with dana")
    spoken = auth.verify_identity(SECRET, block, "c")
    assert spoken.heard == "log a call with dana" and spoken.audit_channel == "telegram:voice"
    on_voice = auth.sign_identity(SECRET, demo.actor("alice"), "voice", "c", heard="yes")
    assert auth.verify_identity(SECRET, on_voice, "c").audit_channel == "voice"
    block["claims"]["heard"] = "delete everything"  # type: ignore[index]
    with pytest.raises(AuthenticationFailed, match="signature"):
        auth.verify_identity(SECRET, block, "c")


def test_a_write_records_the_transcript_it_was_asked_with_in_the_audit_log(demo: Demo) -> None:
    from crm_backend.models import AuditLog, Team

    with demo.store.unit_of_work(demo.actor("admin"), channel="voice") as uow:
        uow.transcript = "add a team called voice crew → yes"
        uow.session.add(Team(name="Voice crew"))
    with demo.store.unit_of_work(read_only=True) as uow:
        row = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "teams").order_by(AuditLog.id.desc())
        ).first()
        assert row is not None and row.channel == "voice" and row.transcript == "add a team called voice crew → yes"


def test_voice_replies_are_on_by_default_and_each_user_switches_only_their_own(demo: Demo) -> None:
    from crm_backend.services import users

    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        assert users.voice_replies(uow) is True
        users.set_voice_replies(uow, False)
    with demo.store.unit_of_work(demo.actor("alice"), read_only=True) as uow:
        assert users.voice_replies(uow) is False
    with demo.store.unit_of_work(demo.actor("bob"), read_only=True) as uow:
        assert users.voice_replies(uow) is True


def test_identity_with_a_changed_user_id_is_refused(demo: Demo) -> None:
    block = auth.sign_identity(SECRET, demo.actor("alice"), "api", "conv-1")
    block["claims"]["user_id"] = demo.actor("bob").user_id  # type: ignore[index]
    with pytest.raises(AuthenticationFailed, match="signature"):
        auth.verify_identity(SECRET, block, "conv-1")


def test_identity_signed_with_another_key_is_refused(demo: Demo) -> None:
    block = auth.sign_identity("other-key", demo.actor("alice"), "api", "conv-1")
    with pytest.raises(AuthenticationFailed):
        auth.verify_identity(SECRET, block, "conv-1")


def test_identity_replayed_in_another_conversation_is_refused(demo: Demo) -> None:
    block = auth.sign_identity(SECRET, demo.actor("alice"), "api", "conv-1")
    with pytest.raises(AuthenticationFailed, match="another conversation"):
        auth.verify_identity(SECRET, block, "conv-2")


def test_stale_identity_is_refused(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    block = auth.sign_identity(SECRET, demo.actor("alice"), "api", "conv-1")
    later = time.time() + 3600
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(AuthenticationFailed, match="too old"):
        auth.verify_identity(SECRET, block, "conv-1")


@pytest.mark.parametrize("block", [None, {}, {"claims": "x"}, {"claims": {}, "sig": ""}])
def test_missing_or_malformed_identity_is_refused(block: object) -> None:
    with pytest.raises(AuthenticationFailed):
        auth.verify_identity(SECRET, block, "conv-1")
