"""The voice door to the assistant: audio in, the transcript through the same Dialogue as typed text,
the replies back as text and as speech.

`POST /api/v1/assistant/voice` (authenticated like the text endpoint) takes one utterance (multipart
field `audio`, or the raw body with its content type); `GET /api/v1/assistant/voice/stream` is a
websocket for streaming (PCM frames in, partial transcripts out, end of utterance by silence). The
recogniser is loaded once in the background at start-up (its choice is logged and shown by /readyz);
a low-confidence or empty result is answered with "Sorry, I didn't catch that" instead of a guess,
and writes still need their spoken read-back and a spoken yes. Every turn runs on channel `voice`,
so audit rows say `voice`, and the conversation's turns keep the transcripts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

from aiohttp import BodyPartReader, WSMsgType, web

from assistant.dialogue import DIALOGUE, api_turn
from assistant.messages import Inbound, Outcome, Reply, Sender
from assistant.settings import Settings
from crm_backend.api.http import STORE, ApiError, authenticate, in_unit_of_work, json_response
from crm_backend.services.vocabulary import record_names
from crm_backend.store import Actor
from voice.audio import AudioRejected, EndOfUtterance, Pcm, decode_to_pcm16k
from voice.recognition import Engine, Transcript, VoiceUnavailable, load_engine, transcribe
from voice.speech import Speaker
from voice.spoken import for_speech
from voice.vocabulary import hotword_phrases

log = logging.getLogger(__name__)

CHANNEL: Final = "voice"
DIDNT_CATCH = "Sorry, I didn't catch that. Could you say it again?"
STREAM_SAMPLE_RATE = 16000
SHORT_ANSWER_SECONDS = 1.5
TRAILING_SILENCE_MS = 300


@dataclass
class VoiceService:
    """The recogniser and the speaker, loaded once; `error` says why voice is unavailable."""

    settings: Settings
    engine: Engine | None = None
    speaker: Speaker | None = None
    error: str | None = None
    loading: asyncio.Task[None] | None = None
    choice: str = field(default="")

    async def load(self) -> None:
        try:
            self.engine = await asyncio.to_thread(load_engine, self.settings)
            self.speaker = await asyncio.to_thread(Speaker.from_settings, self.settings)
            self.choice = self.engine.name
            log.info("voice: speech recognition with %s", self.engine.name)
        except (VoiceUnavailable, Exception) as exc:  # a missing model must not take the gateway down
            self.error = str(exc) or type(exc).__name__
            log.error("voice: unavailable: %s", self.error)

    async def ready(self) -> tuple[Engine, Speaker]:
        if self.loading is not None:
            await asyncio.shield(self.loading)
        if self.engine is None or self.speaker is None:
            raise ApiError(503, "voice_unavailable", f"Voice is not available: {self.error or 'not loaded'}")
        return self.engine, self.speaker

    def state(self) -> dict[str, Any]:
        if self.engine is not None and self.speaker is not None:
            return {"ok": True, "engine": self.choice, "tts": self.speaker.backend, "voice": self.speaker.voice}
        if self.error is not None:
            return {"ok": False, "detail": self.error}
        return {"ok": False, "detail": "loading"}


VOICE = web.AppKey("voice", VoiceService)


async def vocabulary_for(app: web.Application, actor: Actor) -> list[str]:
    """Short phrases from the names of the records the speaker may see (the recogniser's hotwords)."""
    names: list[str] = await in_unit_of_work(app[STORE], actor, record_names, read_only=True)
    return hotword_phrases(names)


async def read_audio(request: web.Request, max_bytes: int) -> tuple[bytes, str | None, dict[str, str]]:
    """The utterance and its content type, from a multipart field `audio` or the raw body; other
    multipart fields (conversation_id, speak) come back as options."""
    options: dict[str, str] = dict(request.query)
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        audio: bytes | None = None
        content_type: str | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = getattr(part, "name", None)
            if name == "audio":
                content_type = part.headers.get("Content-Type")
                audio = await _read_limited(part, max_bytes)
            elif name:
                options[name] = (await part.read(decode=True)).decode("utf-8", "replace")[:200]
        if audio is None:
            raise ApiError(400, "invalid_body", 'Send the recording in a multipart field named "audio".')
        return audio, content_type, options
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "audio_too_large", f"The recording is larger than the limit of {max_bytes:,} bytes.")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ApiError(413, "audio_too_large", f"The recording is larger than the limit of {max_bytes:,} bytes.")
    return body, request.content_type, options


async def _read_limited(part: Any, max_bytes: int) -> bytes:
    chunks = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "audio_too_large", f"The recording is larger than the limit of {max_bytes:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def transcript_json(t: Transcript) -> dict[str, Any]:
    return {
        "text": t.text,
        "confidence": round(t.confidence, 3),
        "engine": t.engine,
        "words": [
            {"text": w.text, "start": round(w.start, 2), "end": round(w.end, 2), "confidence": round(w.confidence, 3)}
            for w in t.words
        ],
    }


def reply_json(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "buttons": [{"title": b.title, "key": b.key} for b in reply.buttons]}


def understood(transcript: Transcript, settings: Settings) -> bool:
    """Clear enough to act on; otherwise the user hears "didn't catch that" rather than a guess."""
    return bool(transcript.text.strip()) and transcript.confidence >= settings.voice_min_confidence


async def voice_turn(
    request: web.Request, actor: Actor, transcript: Transcript, conversation_id: str | None
) -> tuple[Outcome, bool]:
    """The transcript through the Dialogue (or "didn't catch that"); True when it was understood."""
    settings = request.app[VOICE].settings
    if not understood(transcript, settings):
        return Outcome(conversation_id, [Reply(DIDNT_CATCH)]), False
    inbound = Inbound(
        sender=Sender(CHANNEL, str(actor.user_id)),
        thread=conversation_id or "",
        text=transcript.text,
        heard={"confidence": round(transcript.confidence, 3), "engine": transcript.engine},
    )
    return await api_turn(request.app, inbound, actor), True


async def spoken(speaker: Speaker, replies: list[Reply]) -> tuple[str, bytes]:
    """The replies as one spoken text and its WAV ("" and no audio when there is nothing to say)."""
    text = for_speech(replies)
    return (text, await speaker.synthesize(text)) if text else ("", b"")


@dataclass(frozen=True)
class SpokenTurn:
    """A voice message answered: the Outcome (its first reply says what was heard), the transcript, and
    the replies as speech (WAV) when the speaker wants voice replies (b"" otherwise)."""

    outcome: Outcome
    transcript: Transcript | None
    speech: bytes = b""
    heard: bool = False  # the transcript was clear enough to be answered


def heard_reply(transcript: Transcript) -> Reply:
    return Reply(f"I heard: \u201c{transcript.text}\u201d")


async def answer_transcript(
    app: web.Application, inbound: Inbound, transcript: Transcript, actor: Actor | None, *, echo: bool = True
) -> SpokenTurn:
    """A transcript from a chat channel (a voice note, the widget's push-to-talk) through the Dialogue like
    typed text: shown back first ("I heard: ..." unless `echo` is off, for a client that shows the
    transcript itself), answered, and spoken when the user wants voice replies."""
    service = app[VOICE]
    if not understood(transcript, service.settings):
        return SpokenTurn(Outcome(None, [Reply(DIDNT_CATCH)]), transcript)
    heard = {"confidence": round(transcript.confidence, 3), "engine": transcript.engine}
    outcome = await app[DIALOGUE].handle(replace(inbound, text=transcript.text, heard=heard), actor=actor)
    answered = replace(outcome, replies=[heard_reply(transcript), *outcome.replies]) if echo else outcome
    speaker = service.speaker
    if actor is None or speaker is None or not outcome.replies or not await app[DIALOGUE].wants_voice_replies(actor):
        return SpokenTurn(answered, transcript, heard=True)
    _text, wav = await spoken(speaker, outcome.replies)
    return SpokenTurn(answered, transcript, wav, heard=True)


async def voice_note(
    app: web.Application, inbound: Inbound, audio: bytes, content_type: str | None, *, actor: Actor | None = None
) -> SpokenTurn:
    """A recorded voice message from a chat channel (a Telegram voice note, a Slack audio clip): decoded,
    transcribed with the speaker's record names as hints, then answered like typed text. An unlinked
    chat account gets the linking instructions; a recording that cannot be used gets a sentence why."""
    dialogue = app[DIALOGUE]
    actor = actor or await dialogue.actor_of(inbound.sender)
    if actor is None:  # not linked: the Dialogue explains how to link (nothing is transcribed)
        return SpokenTurn(await dialogue.handle(replace(inbound, text="")), None)
    service = app[VOICE]
    settings = service.settings
    try:
        engine, _speaker = await service.ready()
    except ApiError as exc:
        return SpokenTurn(Outcome(None, [Reply(f"{exc.message} Please type your message instead.")]), None)
    try:
        pcm = await asyncio.to_thread(
            decode_to_pcm16k,
            audio,
            content_type,
            max_bytes=settings.voice_max_bytes,
            max_seconds=settings.voice_max_seconds,
        )
    except AudioRejected as exc:
        return SpokenTurn(Outcome(None, [Reply(f"I couldn't use that recording: {exc.message}")]), None)
    vocabulary = await vocabulary_for(app, actor) if pcm.duration_seconds > SHORT_ANSWER_SECONDS else []
    transcript = await asyncio.to_thread(transcribe, engine, pcm, vocabulary)
    return await answer_transcript(app, inbound, transcript, actor)


async def post_voice(request: web.Request) -> web.Response:
    service = request.app[VOICE]
    settings = service.settings
    actor = await authenticate(request)
    audio, content_type, options = await read_audio(request, settings.voice_max_bytes)
    engine, speaker = await service.ready()
    try:
        pcm: Pcm = await asyncio.to_thread(
            decode_to_pcm16k,
            audio,
            content_type,
            max_bytes=settings.voice_max_bytes,
            max_seconds=settings.voice_max_seconds,
        )
    except AudioRejected as exc:
        raise ApiError(exc.status, "audio_rejected", exc.message) from exc
    # Names only help a request that can hold one; on a short answer ("yes") they make Whisper hallucinate.
    vocabulary = await vocabulary_for(request.app, actor) if pcm.duration_seconds > SHORT_ANSWER_SECONDS else []
    transcript = await asyncio.to_thread(transcribe, engine, pcm, vocabulary)
    outcome, _understood = await voice_turn(request, actor, transcript, options.get("conversation_id") or None)
    body: dict[str, Any] = {
        "conversation_id": outcome.conversation_id,
        "transcript": transcript_json(transcript),
        "replies": [reply_json(r) for r in outcome.replies],
    }
    if options.get("speak", "true").lower() not in ("false", "0", "no"):
        speech, wav = await spoken(speaker, outcome.replies)
        body["speech"] = speech
        body["audio"] = {"content_type": "audio/wav", "base64": base64.b64encode(wav).decode("ascii")}
    return json_response(body)


async def stream_voice(request: web.Request) -> web.StreamResponse:
    """Websocket: authenticate (`Authorization` header, or a first frame {"type": "auth", "token"}),
    then binary frames of 16 kHz mono s16le PCM. Partial transcripts come back while the user speaks;
    after 0.7 s of silence (or {"type": "end"}) the final transcript, the replies and their speech."""
    service = request.app[VOICE]
    settings = service.settings
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=256 * 1024)
    await ws.prepare(request)
    try:
        actor = await _stream_actor(request, ws)
        if actor is None:
            await ws.send_json({"type": "error", "code": "invalid_token", "message": "Sign in with a valid API token."})
            return ws
        try:
            engine, speaker = await service.ready()
        except ApiError as exc:
            await ws.send_json({"type": "error", "code": exc.code, "message": exc.message})
            return ws
        vocabulary = await vocabulary_for(request.app, actor)
        conversation_id: str | None = request.query.get("conversation_id") or None
        async for utterance in _utterances(ws, engine, vocabulary, settings):
            outcome, _ = await voice_turn(request, actor, utterance, conversation_id)
            conversation_id = outcome.conversation_id or conversation_id
            speech, wav = await spoken(speaker, outcome.replies)
            await ws.send_json(
                {
                    "type": "reply",
                    "conversation_id": conversation_id,
                    "transcript": transcript_json(utterance),
                    "replies": [reply_json(r) for r in outcome.replies],
                    "speech": speech,
                    "audio": {"content_type": "audio/wav", "base64": base64.b64encode(wav).decode("ascii")},
                }
            )
    except ApiError as exc:
        with contextlib.suppress(ConnectionResetError):
            await ws.send_json({"type": "error", "code": exc.code, "message": exc.message})
    except Exception:
        log.exception("voice stream failed")
        with contextlib.suppress(ConnectionResetError):
            await ws.send_json({"type": "error", "code": "internal", "message": "Something went wrong with voice."})
    finally:
        await ws.close()
    return ws


async def _stream_actor(request: web.Request, ws: web.WebSocketResponse) -> Actor | None:
    try:
        return await authenticate(request)
    except ApiError:
        pass
    message = await ws.receive(timeout=30)
    if message.type != WSMsgType.TEXT:
        return None
    try:
        frame = json.loads(message.data)
    except ValueError:
        return None
    token = frame.get("token") if isinstance(frame, dict) and frame.get("type") == "auth" else None
    if not isinstance(token, str):
        return None
    return await request.app[DIALOGUE].authenticate(token)


class Listening:
    """One utterance arriving as 16 kHz mono s16le frames: partial transcripts while it grows, its end
    by silence (EndOfUtterance), and a time limit. Only speech and a short pause reach the recogniser:
    long silence makes Whisper hallucinate ("Mhm", "Thank you")."""

    def __init__(self, engine: Engine, vocabulary: list[str], settings: Settings) -> None:
        self.recognizer = engine.recognizer(vocabulary, partials=True)
        self.end = EndOfUtterance()
        self.max_seconds = settings.voice_max_seconds
        self.seconds = 0.0

    async def feed(self, data: bytes) -> tuple[str | None, bool]:
        """Take a frame; (a new partial transcript or None, whether the speaker has stopped).
        AudioRejected (413) past the time limit."""
        self.seconds += len(data) / (2 * STREAM_SAMPLE_RATE)
        if self.seconds > self.max_seconds:
            raise AudioRejected(413, f"That was longer than {self.max_seconds:g} seconds; please keep it shorter.")
        finished = self.end.feed(data)
        if finished or self.end.speech_ms == 0 or self.end.trailing_silence_ms > TRAILING_SILENCE_MS:
            return None, finished
        partial = await asyncio.to_thread(self.recognizer.accept, data)
        return (partial.text if partial is not None and partial.text else None), False

    async def finish(self) -> Transcript:
        return await asyncio.to_thread(self.recognizer.finish)


async def _utterances(
    ws: web.WebSocketResponse, engine: Engine, vocabulary: list[str], settings: Settings
) -> AsyncIterator[Transcript]:
    """One final transcript per utterance; partials are sent as they come."""
    listening = Listening(engine, vocabulary, settings)
    async for message in ws:
        finished = False
        if message.type == WSMsgType.BINARY:
            try:
                partial, finished = await listening.feed(message.data)
            except AudioRejected as exc:
                await ws.send_json({"type": "error", "code": "audio_too_long", "message": exc.message})
                finished = True
            else:
                if partial:
                    await ws.send_json({"type": "partial", "text": partial})
        elif message.type == WSMsgType.TEXT:
            try:
                frame = json.loads(message.data)
            except ValueError:
                frame = {}
            finished = isinstance(frame, dict) and frame.get("type") == "end"
        else:
            break
        if finished:
            yield await listening.finish()
            listening = Listening(engine, vocabulary, settings)


def mount(app: web.Application, settings: Settings) -> None:
    """Add the voice routes; the recogniser loads in the background so the gateway starts at once."""
    service = VoiceService(settings)
    app[VOICE] = service

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        service.loading = asyncio.create_task(service.load())
        yield
        if service.loading is not None and not service.loading.done():
            service.loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await service.loading

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/v1/assistant/voice", post_voice)
    app.router.add_get("/api/v1/assistant/voice/stream", stream_voice)
