"""Text to speech for real: espeak-ng renders replies to WAV bytes a browser or Telegram can play, off the event loop,
in the configured voice and rate, without mixing concurrent replies."""

from __future__ import annotations

import asyncio
import shutil
import struct
from datetime import date

import numpy as np
import pytest

from assistant.messages import Button, Reply
from assistant.settings import Settings
from voice.speech import Speaker, UnknownVoice, available_voices, wav_duration
from voice.spoken import for_speech

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SHORT = "Say yes or no."
MEDIUM = "Log a call on Nimbus Labs with Dana Smith: she wants a proposal by Friday?"
LONG = (
    "You have twelve open deals, one million two hundred fifty thousand dollars. One: Nimbus Pilot, Nimbus Labs, "
    "negotiation, forty-eight thousand dollars, fifty percent, closes Friday, December fourth. And eleven more."
)


@pytest.fixture(scope="module")
def speaker() -> Speaker:
    return Speaker()


def wav_format(data: bytes) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from the RIFF header's `fmt ` chunk."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    offset = 12
    while data[offset : offset + 4] != b"fmt ":
        offset += 8 + struct.unpack("<I", data[offset + 4 : offset + 8])[0]
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[offset + 8 : offset + 24])
    return tag, channels, rate, bits


def samples(data: bytes) -> np.ndarray:
    offset = data.index(b"data") + 8
    return np.frombuffer(data[offset:], dtype="<i2")


async def test_a_reply_becomes_a_mono_16_bit_pcm_wav(speaker: Speaker) -> None:
    data = await speaker.synthesize(MEDIUM)
    assert wav_format(data) == (1, 1, 22050, 16)
    assert wav_duration(data) > 0.5
    pcm = samples(data).astype(np.float64)
    assert np.sqrt(np.mean(pcm**2)) > 500  # speech, not silence


async def test_longer_text_gives_proportionally_longer_audio(speaker: Speaker) -> None:
    durations = [wav_duration(await speaker.synthesize(text)) for text in (SHORT, MEDIUM, LONG)]
    assert 0.5 < durations[0] < durations[1] < durations[2]
    per_char = [d / len(t) for d, t in zip(durations[1:], (MEDIUM, LONG), strict=True)]
    assert max(per_char) / min(per_char) < 1.5  # about the same speaking speed for both sentences


async def test_concurrent_replies_neither_crash_nor_mix(speaker: Speaker) -> None:
    alone = {text: await speaker.synthesize(text) for text in (SHORT, MEDIUM, LONG)}
    texts = [SHORT, MEDIUM, LONG] * 4
    together = await asyncio.gather(*(speaker.synthesize(text) for text in texts))
    for text, data in zip(texts, together, strict=True):
        assert abs(wav_duration(data) - wav_duration(alone[text])) < 0.02, text


async def test_synthesis_leaves_the_event_loop_free(speaker: Speaker) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await speaker.synthesize(LONG * 3)
    ticker.cancel()
    assert ticks >= 3


async def test_a_spoken_reply_is_rendered_end_to_end(speaker: Speaker) -> None:
    replies = [
        Reply("Move “Nimbus Pilot” to Negotiation, amount $40,000 → $48,000?", (Button("Yes", "y"), Button("No", "n")))
    ]
    data = await speaker.synthesize(for_speech(replies, today=date(2026, 11, 26)))
    assert wav_duration(data) > 3.0


def test_settings_choose_the_voice_and_rate() -> None:
    slow = Speaker.from_settings(Settings(TTS_VOICE="en-gb-x-rp", TTS_RATE=120))
    fast = Speaker.from_settings(Settings(TTS_VOICE="gmw/en-gb-x-rp", TTS_RATE=260))
    assert slow.voice == fast.voice == "gmw/en-gb-x-rp"
    assert wav_duration(slow.render(MEDIUM)) > 1.6 * wav_duration(fast.render(MEDIUM))


def test_a_voice_can_be_named_by_language_name_or_variant() -> None:
    assert Speaker("en-us").voice == "gmw/en-us"
    assert Speaker("English (America)").voice == "gmw/en-us"
    assert Speaker("gmw/en-us+f3").voice == "gmw/en-us+f3"
    assert "gmw/en-us" in {v.id for v in available_voices()}


def test_an_unknown_voice_is_refused_at_start_up_with_voices_to_choose_from() -> None:
    with pytest.raises(UnknownVoice) as refused:
        Speaker("xx-no-such-voice")
    message = str(refused.value)
    assert "'xx-no-such-voice'" in message and "TTS_VOICE" in message
    assert "gmw/en-us" in message and "gmw/en-gb-x-rp" in message
    with pytest.raises(UnknownVoice, match="variant"):
        Speaker("gmw/en-us+no-such-variant")


def test_a_rate_espeak_cannot_speak_is_refused() -> None:
    with pytest.raises(ValueError, match="TTS_RATE"):
        Speaker(rate=20)


def test_empty_text_and_non_wav_bytes_are_refused(speaker: Speaker) -> None:
    with pytest.raises(ValueError, match="no text"):
        speaker.render("   ")
    with pytest.raises(ValueError, match="WAV"):
        wav_duration(b"ID3\x04 not a wav")


def test_the_espeak_ng_command_is_used_where_installed(speaker: Speaker) -> None:
    assert speaker.backend == "espeak-ng"
    assert speaker.render(MEDIUM) == speaker.render(MEDIUM)  # one process per reply: identical every time


def test_the_pyttsx3_path_speaks_the_same_voice() -> None:
    pyttsx3 = Speaker(backend="pyttsx3")
    command = Speaker(backend="espeak-ng")
    data = pyttsx3.render(MEDIUM)
    assert wav_format(data) == (1, 1, 22050, 16)
    assert abs(wav_duration(data) - wav_duration(command.render(MEDIUM))) < 0.3
