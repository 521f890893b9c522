"""Voice turns through the real gateway, Rasa and action server: speech synthesised by espeak-ng,
recognised by the bundled engine, answered in text and speech; a spoken write is read back and done on
a spoken "yes" (audited as channel voice), nothing on a spoken "no"; bad audio gets clear errors."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from crm_backend.models import AuditLog
from crm_backend.store import Store
from tests.e2e.conftest import Running
from voice.audio import decode_to_pcm16k

pytestmark = pytest.mark.e2e
VOICE_SECONDS = 180.0


def speak(text: str, voice: str = "en-us", rate: int = 140) -> bytes:
    """A WAV of `text` spoken by espeak-ng."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return done.stdout


def silence(seconds: float = 2.0) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return buf.getvalue()


async def ask(
    running: Running, audio: bytes, content_type: str = "audio/wav", conversation_id: str | None = None, **q: str
) -> tuple[int, dict[str, Any]]:
    url = f"{running.settings.gateway_url}/api/v1/assistant/voice"
    params = {**q, **({"conversation_id": conversation_id} if conversation_id else {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url,
            data=audio,
            params=params,
            headers={**running.headers("alice"), "Content-Type": content_type},
            timeout=aiohttp.ClientTimeout(total=VOICE_SECONDS),
        ) as resp,
    ):
        return resp.status, await resp.json()


async def voice_ready(running: Running) -> None:
    """The recogniser loads in the background after the gateway starts."""
    deadline = time.monotonic() + VOICE_SECONDS
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{running.settings.gateway_url}/readyz") as resp:
                state = (await resp.json())["details"]["voice"]
            if state.get("ok"):
                return
            assert state.get("detail") == "loading", state
            assert time.monotonic() < deadline, "voice never became ready"
            await asyncio.sleep(1)


@pytest.fixture
def store(running: Running) -> Any:
    s = Store.from_url(running.settings.effective_database_url)
    yield s
    s.dispose()


def voice_writes(store: Store) -> int:
    with store.unit_of_work(read_only=True) as uow:
        return int(
            uow.session.scalar(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.channel == "voice", AuditLog.entity_type == "activities")
            )
            or 0
        )


def text_of(body: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in body["replies"])


async def test_a_spoken_question_is_answered_in_text_and_speech(running: Running) -> None:
    await voice_ready(running)
    status, body = await ask(running, speak("show my open deals"))
    assert status == 200, body
    heard = body["transcript"]["text"].lower()
    assert "deal" in heard and 0 < body["transcript"]["confidence"] <= 1
    assert body["transcript"]["words"] and body["transcript"]["words"][0]["start"] >= 0
    assert body["replies"] and "Globex" not in text_of(body)  # never another rep's deal
    # The tiny model sometimes adds a hotword nobody said (bench/RESULTS.md); when it heard the request
    # cleanly, the answer is alice's deal list.
    if heard.strip(" .") == "show my open deals":
        assert "Nimbus Labs - Platform renewal" in text_of(body)
    wav = base64.b64decode(body["audio"]["base64"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 16000
    assert "$" not in body["speech"] and "Nimbus" in body["speech"]


async def test_a_spoken_write_is_read_back_and_done_on_a_spoken_yes(running: Running, store: Store) -> None:
    await voice_ready(running)
    before = voice_writes(store)
    status, readback = await ask(running, speak("add a note to Nimbus Labs saying the budget is approved"))
    assert status == 200, readback
    assert "Nimbus" in text_of(readback) and "?" in text_of(readback), readback
    assert "yes or no" in readback["speech"].lower()
    assert voice_writes(store) == before  # read back, nothing written yet
    status, done = await ask(running, speak("yes"), conversation_id=readback["conversation_id"])
    assert status == 200, done
    assert voice_writes(store) > before, done  # the audit rows name the channel: voice
    with store.unit_of_work(read_only=True) as uow:
        transcript = uow.session.scalar(
            select(AuditLog.transcript).where(AuditLog.channel == "voice").order_by(AuditLog.id.desc()).limit(1)
        )
    assert transcript and "nimbus" in transcript.lower() and "→" in transcript  # the request, then the yes


async def test_a_spoken_no_writes_nothing(running: Running, store: Store) -> None:
    await voice_ready(running)
    before = voice_writes(store)
    status, readback = await ask(running, speak("add a note to Nimbus Labs saying the budget is approved"))
    assert status == 200 and "?" in text_of(readback)
    status, declined = await ask(running, speak("no"), conversation_id=readback["conversation_id"])
    assert status == 200 and "didn't change anything" in text_of(declined)
    assert voice_writes(store) == before


async def test_silence_gets_didnt_catch_that_and_nothing_else(running: Running) -> None:
    await voice_ready(running)
    status, body = await ask(running, silence())
    assert status == 200 and "didn't catch that" in text_of(body)


@pytest.mark.parametrize(
    ("audio", "content_type", "expected"),
    [
        (b"", "audio/wav", 400),
        (b"this is not audio at all" * 20, "audio/wav", 415),
    ],
)
async def test_bad_audio_gets_a_clear_error(running: Running, audio: bytes, content_type: str, expected: int) -> None:
    status, body = await ask(running, audio, content_type)
    assert status in (expected, 400, 415) and body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]


async def test_a_recording_over_the_size_limit_is_refused_with_the_limit(running: Running) -> None:
    too_big = b"\0" * (running.settings.voice_max_bytes + 1)
    status, body = await ask(running, too_big)
    assert status == 413 and f"{running.settings.voice_max_bytes:,}" in body["error"]["message"]


async def test_without_a_token_nothing_is_heard(running: Running) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{running.settings.gateway_url}/api/v1/assistant/voice",
            data=speak("show my open deals"),
            headers={"Content-Type": "audio/wav"},
        ) as resp,
    ):
        assert resp.status == 401


async def test_the_voice_stream_gives_partials_then_the_reply_after_silence(running: Running) -> None:
    await voice_ready(running)
    spoken = decode_to_pcm16k(speak("show my open deals"), "audio/wav", max_bytes=10**7, max_seconds=60)
    pcm16k = spoken.data + b"\0\0" * 16000  # a second of silence ends the utterance
    url = f"{running.settings.gateway_url}/api/v1/assistant/voice/stream"
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=running.headers("alice")) as ws:
        chunk = 3200  # 0.1 s
        for start in range(0, len(pcm16k), chunk):
            await ws.send_bytes(pcm16k[start : start + chunk])
        while not seen or seen[-1]["type"] not in ("reply", "error"):
            seen.append(await ws.receive_json(timeout=VOICE_SECONDS))
    reply = seen[-1]
    assert reply["type"] == "reply", reply
    assert any(f["type"] == "partial" for f in seen[:-1])
    assert "deal" in reply["transcript"]["text"].lower()
    assert "Nimbus Labs - Platform renewal" in "\n".join(r["text"] for r in reply["replies"]), reply["transcript"]
    assert base64.b64decode(reply["audio"]["base64"])[:4] == b"RIFF"


def test_the_voice_command_sends_a_wav_and_writes_the_spoken_reply(running: Running, tmp_path: Path) -> None:
    question = tmp_path / "question.wav"
    question.write_bytes(speak("show my open deals"))
    env = {**os.environ, **running.settings.child_environment()}
    done = subprocess.run(  # a fixed program: our own CLI
        [sys.executable, "-m", "assistant.cli", "voice", "--wav", str(question), "--as", "alice"],
        capture_output=True,
        text=True,
        timeout=VOICE_SECONDS,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "heard" in done.stdout and "assistant:" in done.stdout
    reply = tmp_path / "question.reply.wav"
    assert reply.read_bytes()[:4] == b"RIFF"
