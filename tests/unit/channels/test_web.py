"""The widget's pure rules: the signed visitor session, the origin check, the per-session rate limit and
frame checks. The browser-level behaviour is in tests/e2e/test_web_widget.py."""

from __future__ import annotations

import datetime as dt

import pytest
from itsdangerous import URLSafeTimedSerializer

from assistant.messages import Button, Reply
from channels.web import (
    SESSION_SALT,
    Frame,
    FrameRejected,
    RateLimiter,
    SessionSigner,
    normalize_origin,
    origin_allowed,
    parse_frame,
    reply_json,
)

SECRET = "unit-test-secret"


# --- sessions ---


def test_a_visitor_without_a_cookie_gets_a_new_signed_session() -> None:
    signer = SessionSigner(SECRET)
    session = signer.resolve(None)
    assert session.id.startswith("v-") and session.cookie
    assert signer.resolve(session.cookie).id == session.id


def test_a_valid_cookie_keeps_its_session_and_sets_no_new_cookie() -> None:
    signer = SessionSigner(SECRET)
    first = signer.resolve(None)
    again = signer.resolve(first.cookie)
    assert again.id == first.id and again.cookie is None


def test_every_new_session_id_is_different() -> None:
    signer = SessionSigner(SECRET)
    assert len({signer.resolve(None).id for _ in range(50)}) == 50


def test_a_forged_cookie_is_rejected_and_a_new_session_issued() -> None:
    signer = SessionSigner(SECRET)
    forged = URLSafeTimedSerializer("someone-elses-key", salt=SESSION_SALT).dumps("v-" + "a" * 24)
    session = signer.resolve(forged)
    assert session.id != "v-" + "a" * 24 and session.cookie


def test_a_tampered_cookie_is_rejected() -> None:
    signer = SessionSigner(SECRET)
    good = signer.resolve(None)
    assert good.cookie is not None
    value, _, signature = good.cookie.rpartition(".")
    tampered = value + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert signer.resolve(tampered).id != good.id


def test_a_browser_chosen_id_is_not_a_session() -> None:
    signer = SessionSigner(SECRET)
    for chosen in ("v-" + "b" * 24, "alice", "", "x" * 2000):
        assert signer.resolve(chosen).id != chosen


def test_a_cookie_signed_for_another_purpose_is_rejected() -> None:
    signer = SessionSigner(SECRET)
    other_salt = URLSafeTimedSerializer(SECRET, salt="something-else").dumps("v-" + "c" * 24)
    assert signer.resolve(other_salt).id != "v-" + "c" * 24


def test_a_signed_value_that_is_not_a_session_id_is_rejected() -> None:
    signer = SessionSigner(SECRET)
    signed = URLSafeTimedSerializer(SECRET, salt=SESSION_SALT).dumps({"user_id": 1})
    session = signer.resolve(signed)
    assert session.id.startswith("v-") and session.cookie


def test_an_expired_cookie_gets_a_new_session() -> None:
    signer = SessionSigner(SECRET, max_age_seconds=-1)  # everything is already too old
    first = SessionSigner(SECRET).resolve(None)
    assert signer.resolve(first.cookie).id != first.id


def test_an_old_but_valid_cookie_is_re_signed_for_the_same_session() -> None:
    signer = SessionSigner(SECRET)
    first = signer.resolve(None)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    refreshed = signer.resolve(first.cookie, now=later)
    assert refreshed.id == first.id and refreshed.cookie is not None


# --- origins ---

OWN = {"http://127.0.0.1:8080", "http://localhost:8080"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Shop.Example.com", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://shop.example.com:80/", "http://shop.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("null", None),
        ("file://", None),
        ("https://shop.example.com/page", None),
        ("javascript:alert(1)", None),
        ("https://user@shop.example.com", None),
        ("https://shop.example.com:99999", None),
    ],
)
def test_origins_are_compared_in_one_normal_form(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


def test_the_gateways_own_origin_is_allowed() -> None:
    assert origin_allowed("http://127.0.0.1:8080", OWN)


def test_a_listed_origin_is_allowed_and_others_are_refused() -> None:
    allowed = OWN | {"https://www.example.com"}
    assert origin_allowed("https://www.example.com", allowed)
    assert origin_allowed("https://WWW.example.com:443", allowed)
    assert not origin_allowed("https://evil.example.com", allowed)
    assert not origin_allowed("http://www.example.com", allowed)  # another scheme is another origin
    assert not origin_allowed("https://www.example.com.evil.net", allowed)
    assert not origin_allowed("http://127.0.0.1:8081", allowed)


def test_an_opaque_origin_is_refused() -> None:
    assert not origin_allowed("null", OWN)
    assert not origin_allowed("", OWN)


def test_no_origin_is_accepted_only_when_the_browser_does_not_say_cross_site() -> None:
    assert origin_allowed(None, OWN)  # a non-browser client
    assert origin_allowed(None, OWN, fetch_site="same-origin")  # a same-origin GET
    assert not origin_allowed(None, OWN, fetch_site="cross-site")
    assert not origin_allowed(None, OWN, fetch_site="same-site")


def test_a_malformed_allowed_origin_setting_allows_nothing_extra() -> None:
    assert not origin_allowed("https://a.example.com", {"not an origin", "https://a.example.com/path"})


# --- rate limit ---


def test_the_limit_refuses_the_message_after_n_in_a_window() -> None:
    limiter = RateLimiter(limit=3, window=60.0)
    assert [limiter.hit("s1", now=t).allowed for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    refused = limiter.hit("s1", now=10.0)
    assert not refused.allowed and refused.retry_after == pytest.approx(50.0)


def test_the_window_slides() -> None:
    limiter = RateLimiter(limit=2, window=60.0)
    assert limiter.hit("s", now=0.0).allowed
    assert limiter.hit("s", now=30.0).allowed
    assert not limiter.hit("s", now=59.0).allowed
    assert limiter.hit("s", now=60.5).allowed  # the message at 0 left the window
    assert not limiter.hit("s", now=61.0).allowed
    assert limiter.hit("s", now=90.5).allowed


def test_refused_messages_do_not_extend_the_wait() -> None:
    limiter = RateLimiter(limit=1, window=10.0)
    assert limiter.hit("s", now=0.0).allowed
    for t in range(1, 10):
        assert not limiter.hit("s", now=float(t)).allowed
    assert limiter.hit("s", now=10.5).allowed


def test_sessions_are_limited_separately() -> None:
    limiter = RateLimiter(limit=1, window=60.0)
    assert limiter.hit("a", now=0.0).allowed
    assert not limiter.hit("a", now=1.0).allowed
    assert limiter.hit("b", now=1.0).allowed


def test_idle_sessions_are_forgotten_when_the_table_is_full() -> None:
    limiter = RateLimiter(limit=1, window=60.0, max_keys=2)
    limiter.hit("a", now=0.0)
    limiter.hit("b", now=0.0)
    assert limiter.hit("c", now=100.0).allowed
    assert set(limiter._hits) == {"c"}


def test_the_limiter_uses_its_clock() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=1, window=5.0, clock=lambda: now[0])
    assert limiter.hit("s").allowed
    assert not limiter.hit("s").allowed
    now[0] = 6.0
    assert limiter.hit("s").allowed


# --- frames and replies ---


def test_frames_are_checked() -> None:
    assert parse_frame({"type": "message", "text": "hi"}, 10) == Frame("message", "hi")
    assert parse_frame({"text": "hi"}, 10) == Frame("message", "hi")
    assert parse_frame({"type": "button", "key": "k1"}, 10) == Frame("button", "k1")
    assert parse_frame({"type": "history"}, 10) == Frame("history")
    assert parse_frame({"type": "auth", "token": "crm_x"}, 10) == Frame("auth", "crm_x")
    assert parse_frame({"type": "voice_start"}, 10) == Frame("voice_start")
    assert parse_frame({"type": "voice_end"}, 10) == Frame("voice_end")


@pytest.mark.parametrize(
    "data",
    [[], "hi", {"type": "message"}, {"type": "message", "text": "   "}, {"type": "button"}, {"type": "payload"}],
)
def test_bad_frames_get_a_sentence(data: object) -> None:
    with pytest.raises(FrameRejected) as caught:
        parse_frame(data, 10)
    assert caught.value.message.endswith(".")


def test_a_message_over_the_limit_is_refused_with_the_limit_named() -> None:
    with pytest.raises(FrameRejected) as caught:
        parse_frame({"type": "message", "text": "x" * 11}, 10)
    assert "10 characters" in caught.value.message and caught.value.status == 413


def test_a_reply_is_rendered_with_keys_never_payloads() -> None:
    reply = Reply("Pick one", (Button("Help", "k-1", "/help"),), rows=(("Acme", "$1"),))
    assert reply_json(reply) == {
        "text": "Pick one",
        "buttons": [{"title": "Help", "key": "k-1"}],
        "rows": [["Acme", "$1"]],
    }
