"""Voice notes on the chat channels, end to end: a Telegram voice message (OGG/Opus, as Telegram sends
them) fetched from the fake Bot API's file server, or a Slack audio clip fetched with the bot token,
transcribed by the bundled engine, shown back ("I heard: ..."), answered by the real Rasa and action
server, and answered with a voice note too unless the user said "voice off". A spoken write confirmed
with a spoken yes is audited as `telegram:voice` with the transcript."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import av
import pytest
from sqlalchemy import select

from crm_backend.models import AuditLog
from crm_backend.store import Store
from tests.e2e.conftest import Running
from tests.e2e.test_slack_channel import SlackSide
from tests.e2e.test_slack_channel import text_of as slack_text
from tests.e2e.test_telegram_channel import Chat, link, next_update_id, text_of
from tests.e2e.test_voice import speak, voice_ready
from tests.fakes.server import Call
from tests.fakes.slack_api import message_event, new_id
from tests.fakes.telegram_api import voice_update
from voice.audio import encode_voice_note

pytestmark = pytest.mark.e2e

ALICE_VOICE = 720_001  # Telegram user ids used only here
REP_VOICE = 720_002
STRANGER_VOICE = 720_003
TURN_SECONDS = 180.0


@pytest.fixture(scope="module")
def store(running: Running) -> Any:
    s = Store.from_url(running.settings.effective_database_url)
    yield s
    s.dispose()


async def put_file(running: Running, data: bytes) -> str:
    """A file a user 'uploaded' to Telegram; its file_id."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{running.telegram.url}/_fake/files", data=data) as resp,
    ):
        return str((await resp.json())["file_id"])


async def send_voice(chat: Chat, running: Running, from_id: int, text: str) -> int:
    """`text` spoken by espeak-ng, as a Telegram voice note (OGG/Opus); the recorder position before it."""
    note = encode_voice_note(speak(text))
    file_id = await put_file(running, note)
    since = len(chat.fake.recorder)
    assert await chat.post(voice_update(next_update_id(), file_id, from_id=from_id, file_size=len(note))) == 200
    return since


def seconds_of(ogg: bytes) -> float:
    with av.open(io.BytesIO(ogg), format="ogg") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        return sum(frame.samples for frame in container.decode(stream)) / 48_000


async def answered(chat: Chat, chat_id: int, since: int, contains: str) -> Call:
    return await chat.wait(
        "sendMessage",
        since,
        lambda c: c.params.get("chat_id") == chat_id and contains in text_of(c),
        timeout=TURN_SECONDS,
    )


async def test_a_voice_note_is_heard_shown_back_answered_and_spoken(chat: Chat, running: Running) -> None:
    await voice_ready(running)
    await link(chat, running, REP_VOICE, running.new_user("voicenote"))
    since = await send_voice(chat, running, REP_VOICE, "show my open deals")
    heard = await answered(chat, REP_VOICE, since, "I heard")
    assert "show my open" in text_of(heard).lower()  # the tiny model may hear "deals" as "wheels" here
    assert chat.fake.recorder.calls("getFile") and chat.fake.recorder.calls("downloadFile")
    note = await chat.wait("sendVoice", since, lambda c: c.params.get("chat_id") == REP_VOICE, timeout=TURN_SECONDS)
    ogg = note.params["voice"]["data"]
    assert ogg[:4] == b"OggS" and seconds_of(ogg) > 0.5
    # The answer itself came as text too, after "I heard".
    texts = [text_of(c) for c in chat.sent(since, REP_VOICE)]
    assert len(texts) >= 2 and texts[0].startswith("I heard"), texts


async def test_voice_off_answers_voice_notes_in_text_only(chat: Chat, running: Running) -> None:
    await voice_ready(running)
    await link(chat, running, STRANGER_VOICE, running.new_user("textonly"))
    since = await chat.say(STRANGER_VOICE, "voice off")
    assert "text only" in text_of(await answered(chat, STRANGER_VOICE, since, "text only"))
    since = await send_voice(chat, running, STRANGER_VOICE, "show my open deals")
    await answered(chat, STRANGER_VOICE, since, "I heard")
    await asyncio.sleep(3)  # a voice note would follow the text within this
    assert not [c for c in chat.fake.recorder.calls()[since:] if c.method == "sendVoice"]
    since = await chat.say(STRANGER_VOICE, "voice on")
    assert "voice note" in text_of(await answered(chat, STRANGER_VOICE, since, "Done"))


async def test_an_unlinked_users_voice_note_is_not_fetched_and_gets_asked_to_type_or_link(
    chat: Chat, running: Running
) -> None:
    since = await send_voice(chat, running, 720_099, "show my open deals")
    reply = await answered(chat, 720_099, since, "link")
    assert "please type" in text_of(reply) and "code" in text_of(reply).lower()
    assert not [c for c in chat.fake.recorder.calls()[since:] if c.method in ("getFile", "downloadFile")]


def telegram_voice_rows(store: Store) -> list[AuditLog]:
    with store.unit_of_work(read_only=True) as uow:
        rows = list(uow.session.scalars(select(AuditLog).where(AuditLog.channel == "telegram:voice")))
        uow.session.expunge_all()
        return rows


async def test_a_spoken_write_confirmed_by_voice_is_audited_with_the_transcript(
    chat: Chat, running: Running, store: Store
) -> None:
    await voice_ready(running)
    await link(chat, running, ALICE_VOICE, "alice")
    before = len(telegram_voice_rows(store))
    since = await send_voice(chat, running, ALICE_VOICE, "add a note to Nimbus Labs saying the budget is approved")
    readback = await answered(chat, ALICE_VOICE, since, "?")
    assert "Nimbus" in text_of(readback)
    assert len(telegram_voice_rows(store)) == before  # read back only
    since = await send_voice(chat, running, ALICE_VOICE, "yes")
    await chat.wait(
        "sendMessage",
        since,
        lambda c: c.params.get("chat_id") == ALICE_VOICE and "I heard" not in text_of(c),
        timeout=TURN_SECONDS,
    )
    rows = telegram_voice_rows(store)
    assert len(rows) > before
    written = rows[-1]
    assert written.transcript and "nimbus" in written.transcript.lower() and "→" in written.transcript


async def share_clip(running: Running, audio: bytes) -> dict[str, Any]:
    """An audio clip a Slack user recorded: the file object Slack puts in the message event."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{running.slack.url}/_control/files", data=audio) as resp,
    ):
        shared = await resp.json()
    return {
        "id": shared["id"],
        "name": "Audio clip",
        "mimetype": "audio/webm",
        "filetype": "webm",
        "subtype": "slack_audio",
        "size": len(audio),
        "url_private_download": shared["url_private_download"],
    }


async def test_a_slack_audio_clip_is_heard_answered_and_spoken_back(running: Running) -> None:
    await voice_ready(running)
    slack = SlackSide(running)
    user, dm = await slack.link(running.new_user("slackvoice")), new_id("D")
    clip = await share_clip(running, encode_voice_note(speak("show my open deals")))
    since = slack.mark()
    event = message_event(user, "", dm, subtype="file_share", files=[clip])
    assert await slack.event(event) == 200
    download = await slack.wait("download", since, timeout=TURN_SECONDS)
    assert download.headers["Authorization"].startswith("Bearer xoxb-")
    answer = await asyncio.to_thread(
        running.slack.recorder.wait_for,
        "chat.postMessage",
        lambda c: c.params.get("channel") == dm and "I heard" in slack_text(c),
        TURN_SECONDS,
        since,
    )
    assert "deal" in slack_text(answer).lower()
    done = await slack.wait("files.completeUploadExternal", since, timeout=TURN_SECONDS)
    assert done.params.get("channel_id") == dm
    uploaded = await slack.wait("upload", since)
    assert uploaded.params["data"][:4] == b"OggS" and seconds_of(uploaded.params["data"]) > 0.5


async def test_a_slack_clip_from_another_host_is_not_fetched_with_the_token(running: Running) -> None:
    slack = SlackSide(running)
    user, dm = await slack.link(running.new_user("slackhost")), new_id("D")
    clip = {
        "id": "FEVIL",
        "mimetype": "audio/webm",
        "subtype": "slack_audio",
        "size": 1000,
        "url_private_download": "http://127.0.0.2:9/steal",
    }
    since = slack.mark()
    assert await slack.event(message_event(user, "", dm, subtype="file_share", files=[clip])) == 200
    answer = await slack.wait("chat.postMessage", since, channel=dm)
    assert "couldn't fetch" in slack_text(answer)
    assert not [c for c in running.slack.recorder.calls()[since:] if c.method == "download"]
