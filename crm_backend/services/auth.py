"""Authentication: API tokens for people and programs, and signed identities for the dialogue.

The gateway resolves a bearer token to an `Actor`, then signs that identity into the message
metadata it sends to Rasa. The action server verifies the signature before acting, so a user
id typed into a conversation (or sent straight to Rasa) is never trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from crm_backend.errors import AuthenticationFailed, NotFound, VisitorOnly
from crm_backend.models.base import utcnow
from crm_backend.models.users import ApiToken, Role, User
from crm_backend.store import Actor, UnitOfWork

TOKEN_PREFIX = "crm_"  # noqa: S105 - a public prefix, not a secret
IDENTITY_KEY = "crm_identity"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(user: User) -> Actor:
    return Actor(user_id=user.id, username=user.username, role=user.role, team_id=user.team_id)


def issue_token(uow: UnitOfWork, user_id: int, name: str, ttl: timedelta | None = None) -> str:
    """Create a token for `user_id` and return it; this is the only time it is ever visible."""
    user = uow.session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("No such active user.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    uow.session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=_digest(token),
            prefix=token[:12],
            expires_at=utcnow() + ttl if ttl else None,
        )
    )
    uow.session.flush()
    return token


def authenticate_token(uow: UnitOfWork, token: str) -> Actor:
    """The actor a bearer token belongs to; `AuthenticationFailed` if it is unknown or unusable."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthenticationFailed("Unknown API token.")
    row = uow.session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == _digest(token))
    ).one_or_none()
    if row is None:
        raise AuthenticationFailed("Unknown API token.")
    api_token, user = row
    now = utcnow()
    if api_token.revoked_at is not None or (api_token.expires_at and api_token.expires_at <= now):
        raise AuthenticationFailed("This API token has expired or was revoked.")
    if not user.is_active:
        raise AuthenticationFailed("This user is deactivated.")
    api_token.last_used_at = now
    return actor_for(user)


def revoke_token(uow: UnitOfWork, token: str) -> None:
    api_token = uow.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if api_token is None:
        raise NotFound("Unknown API token.")
    api_token.revoked_at = utcnow()


def load_actor(uow: UnitOfWork, user_id: int) -> Actor:
    """The current state of a user as an actor (role or team may have changed since signing)."""
    user = uow.session.get(User, user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("This user no longer exists or is deactivated.")
    return actor_for(user)


@dataclass(frozen=True, slots=True)
class IdentityClaims:
    """What the gateway asserts about the person behind one message."""

    user_id: int
    role: Role
    channel: str
    conversation_id: str
    issued_at: float
    heard: str | None = None  # the message was spoken: what the recogniser heard

    @property
    def audit_channel(self) -> str:
        """The channel audit rows name: `telegram:voice` for a spoken message on a text channel."""
        if self.heard is None or self.channel == "voice":
            return self.channel
        return f"{self.channel}:voice"


def _canonical(claims: dict[str, object]) -> bytes:
    return json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()


def _sign(secret: str, claims: dict[str, object]) -> dict[str, object]:
    sig = hmac.new(secret.encode(), _canonical(claims), hashlib.sha256).hexdigest()
    return {"claims": claims, "sig": sig}


HEARD_MAX_CHARS = 1000


def sign_identity(
    secret: str, actor: Actor, channel: str, conversation_id: str, heard: str | None = None
) -> dict[str, object]:
    """The metadata block the gateway attaches to a message for Rasa and the actions; `heard` is the
    transcript when the message was spoken (the audit log keeps it with the write)."""
    claims: dict[str, object] = {
        "user_id": actor.user_id,
        "role": actor.role.value,
        "channel": channel,
        "conversation_id": conversation_id,
        "iat": round(time.time(), 3),
    }
    if heard is not None:
        claims["heard"] = heard[:HEARD_MAX_CHARS]
    return _sign(secret, claims)


def sign_visitor(secret: str, visitor_id: str, channel: str, conversation_id: str) -> dict[str, object]:
    """The metadata block for an anonymous website visitor (a prospect): no CRM user behind it."""
    claims: dict[str, object] = {
        "visitor": visitor_id,
        "channel": channel,
        "conversation_id": conversation_id,
        "iat": round(time.time(), 3),
    }
    return _sign(secret, claims)


def _verified_claims(secret: str, block: object, conversation_id: str, max_age_seconds: float) -> dict[str, object]:
    if not isinstance(block, dict) or not isinstance(block.get("claims"), dict):
        raise AuthenticationFailed("The message carries no signed identity.")
    claims: dict[str, object] = block["claims"]
    expected = hmac.new(secret.encode(), _canonical(claims), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(block.get("sig", ""))):
        raise AuthenticationFailed("The identity signature does not match.")
    if claims.get("conversation_id") != conversation_id:
        raise AuthenticationFailed("The identity was signed for another conversation.")
    issued_at = claims.get("iat", 0)
    if not isinstance(issued_at, int | float) or abs(time.time() - float(issued_at)) > max_age_seconds:
        raise AuthenticationFailed("The signed identity is too old.")
    return claims


def verified_visitor(secret: str, block: object, conversation_id: str, max_age_seconds: float = 600.0) -> str | None:
    """The visitor id when `block` is a genuine visitor identity, else None (a CRM user, or not genuine)."""
    try:
        claims = _verified_claims(secret, block, conversation_id, max_age_seconds)
    except AuthenticationFailed:
        return None
    visitor = claims.get("visitor")
    return visitor if isinstance(visitor, str) else None


def verify_identity(secret: str, block: object, conversation_id: str, max_age_seconds: float = 600.0) -> IdentityClaims:
    """Check a signed identity block; raise `AuthenticationFailed` unless it is a CRM user's, genuine
    and fresh (`VisitorOnly` for an anonymous visitor: visitors never read or change CRM records)."""
    claims = _verified_claims(secret, block, conversation_id, max_age_seconds)
    if "visitor" in claims:
        raise VisitorOnly("Visitors cannot use CRM records.")
    issued_at = float(claims["iat"])  # type: ignore[arg-type]
    try:
        return IdentityClaims(
            user_id=int(str(claims["user_id"])),
            role=Role(str(claims["role"])),
            channel=str(claims["channel"]),
            conversation_id=conversation_id,
            issued_at=issued_at,
            heard=str(claims["heard"]) if isinstance(claims.get("heard"), str) else None,
        )
    except (KeyError, ValueError) as exc:
        raise AuthenticationFailed("The signed identity is incomplete.") from exc
