"""Audio in: any upload (WAV, OGG/Opus, WebM, MP3, FLAC, MP4/AAC) to 16 kHz mono 16-bit PCM, the one
format both recognisers take, plus silence and end-of-utterance detection for streaming.

Decoding uses PyAV (FFmpeg's libraries, which faster-whisper already brings). The container is
recognised from its first bytes and named to FFmpeg explicitly, so FFmpeg never picks a demuxer by
probing (playlist formats such as HLS would open further files or URLs named inside the upload).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import av
import av.error
import numpy as np
import webrtcvad  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
SAMPLE_WIDTH = 2  # bytes per sample, s16le
BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH
FRAME_MS = 30  # webrtcvad takes 10, 20 or 30 ms frames
FRAME_BYTES = BYTES_PER_SECOND * FRAME_MS // 1000

FORMATS_SENTENCE = "WAV, OGG/Opus, WebM, MP3, FLAC or MP4/AAC"
# Content types a client may send with audio; anything else is refused before decoding.
_AUDIO_CONTAINER_TYPES = frozenset(
    {"application/octet-stream", "application/ogg", "video/webm", "video/ogg", "video/mp4"}
)


class AudioRejected(Exception):
    """Audio that cannot be used: `status` is the HTTP status to answer with, `message` a sentence for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Pcm:
    """Signed 16-bit little-endian mono samples at 16 kHz, and how long they last."""

    data: bytes
    duration_seconds: float

    @classmethod
    def from_bytes(cls, data: bytes) -> Pcm:
        data = data[: len(data) - len(data) % SAMPLE_WIDTH]
        return cls(data, len(data) / BYTES_PER_SECOND)


def sniff_container(data: bytes) -> str | None:
    """The FFmpeg demuxer for these bytes, from their signature; None when they are no audio we take."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM and Matroska
        return "matroska"
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] == b"ftyp":  # MP4/M4A (Safari records audio/mp4)
        return "mov"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS AAC (layer bits 00)
            return "aac"
        if head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0x3:  # MPEG audio frame sync with a layer
            return "mp3"
    return None


def _check_content_type(content_type: str | None) -> None:
    if not content_type:
        return
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("audio/") or kind in _AUDIO_CONTAINER_TYPES:
        return
    raise AudioRejected(415, f"That upload is {kind}, not audio. Send {FORMATS_SENTENCE}.")


def _too_long(max_seconds: float) -> AudioRejected:
    return AudioRejected(413, f"The recording is longer than the limit of {max_seconds:g} seconds.")


def decode_to_pcm16k(data: bytes, content_type: str | None, *, max_bytes: int, max_seconds: float) -> Pcm:
    """Decode, downmix and resample an uploaded recording; raise AudioRejected with a user sentence when unusable.

    Silence is not an error here: it decodes to (quiet) PCM, and recognition returns an empty transcript.
    """
    if not data:
        raise AudioRejected(400, "The recording was empty.")
    if len(data) > max_bytes:
        raise AudioRejected(413, f"The recording is larger than the limit of {_size_words(max_bytes)}.")
    _check_content_type(content_type)
    container_format = sniff_container(data)
    if container_format is None:
        raise AudioRejected(415, f"That file is not audio we can read. Send {FORMATS_SENTENCE}.")
    max_bytes_out = math.ceil(max_seconds * SAMPLE_RATE) * SAMPLE_WIDTH
    chunks: list[bytes] = []
    size = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format=container_format) as container:
            if not container.streams.audio:
                raise AudioRejected(415, f"That file has no sound in it. Send {FORMATS_SENTENCE}.")
            stream = container.streams.audio[0]
            declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            if declared is not None and declared > max_seconds + 0.5:
                raise _too_long(max_seconds)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray().tobytes()
                        size += len(chunk)
                        if size > max_bytes_out:
                            raise _too_long(max_seconds)
                        chunks.append(chunk)
            except av.error.InvalidDataError:
                # A recording cut off mid-way (a dropped upload, a stopped stream) keeps what decoded.
                if not chunks:
                    raise
                log.info("audio: %s damaged after %.1f s; kept that", container_format, size / BYTES_PER_SECOND)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().tobytes())
    except av.error.DecoderNotFoundError as exc:
        raise AudioRejected(415, f"That recording uses a codec we cannot decode. Send {FORMATS_SENTENCE}.") from exc
    except av.error.FFmpegError as exc:
        raise AudioRejected(415, f"That file is damaged or not audio we can read. Send {FORMATS_SENTENCE}.") from exc
    pcm = Pcm.from_bytes(b"".join(chunks))
    if pcm.duration_seconds > max_seconds:
        raise _too_long(max_seconds)
    if not pcm.data:
        raise AudioRejected(415, f"That file is damaged or holds no sound. Send {FORMATS_SENTENCE}.")
    return pcm


def encode_voice_note(wav: bytes, *, bitrate: int = 32_000) -> bytes:
    """A WAV (the speaker's output) as OGG/Opus at 48 kHz mono: what Telegram plays as a voice note and
    what Slack and browsers play inline."""
    out = io.BytesIO()
    with av.open(io.BytesIO(wav), mode="r", format="wav") as source, av.open(out, mode="w", format="ogg") as sink:
        stream = sink.add_stream("libopus", rate=48_000)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        for frame in source.decode(audio=0):
            for out_frame in resampler.resample(frame):
                for packet in stream.encode(out_frame):
                    sink.mux(packet)
        for out_frame in resampler.resample(None):
            for packet in stream.encode(out_frame):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)
    return out.getvalue()


def _size_words(max_bytes: int) -> str:
    if max_bytes >= 1024 * 1024:
        return f"{max_bytes / (1024 * 1024):g} MB"
    return f"{max_bytes / 1024:g} KB"


def samples_float32(pcm: bytes) -> np.ndarray:
    """The PCM as float32 in [-1, 1], the form Whisper takes."""
    usable = len(pcm) - len(pcm) % SAMPLE_WIDTH
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of the PCM in dB relative to full scale (-inf for digital silence)."""
    samples = samples_float32(pcm)
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else float("-inf")


SILENCE_DBFS = -50.0  # quieter than this is silence whatever the voice detector says


class VoiceActivity:
    """webrtcvad over 30 ms frames, with a loudness floor so hiss and digital silence never count as speech."""

    def __init__(self, aggressiveness: int = 2) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: bytes) -> bool:
        if len(frame) != FRAME_BYTES or rms_dbfs(frame) < SILENCE_DBFS:
            return False
        return bool(self._vad.is_speech(frame, SAMPLE_RATE))


def speech_frames(pcm: Pcm | bytes, aggressiveness: int = 2) -> list[bool]:
    """For each 30 ms frame of the PCM, whether the voice detector takes it for speech."""
    data = pcm.data if isinstance(pcm, Pcm) else pcm
    vad = VoiceActivity(aggressiveness)
    return [vad.is_speech(data[i : i + FRAME_BYTES]) for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES)]


def speech_share(frames: Sequence[bool], start: float, end: float) -> float:
    """The share of the frames between `start` and `end` seconds that are speech (1.0 when none lie there)."""
    span = frames[int(start * 1000) // FRAME_MS : math.ceil(end * 1000 / FRAME_MS)]
    return sum(span) / len(span) if span else 1.0


def too_little_speech(frames: Sequence[bool], min_speech_seconds: float = 0.15) -> bool:
    """True when the frames (speech_frames) hold less than `min_speech_seconds` of speech."""
    return sum(frames) * FRAME_MS / 1000 < min_speech_seconds


def is_silence(pcm: Pcm | bytes, min_speech_seconds: float = 0.15) -> bool:
    """True when the recording holds less than `min_speech_seconds` of speech: nothing worth recognising."""
    return too_little_speech(speech_frames(pcm), min_speech_seconds)


def trim_silence(pcm: Pcm, *, pad_ms: int = 240, aggressiveness: int = 2) -> Pcm:
    """The recording without its leading and trailing non-speech (keeping `pad_ms` either side).

    A voice note or upload often starts and ends with seconds of room noise; Whisper fills those with
    text nobody said ("Thank you.", "Welcome back to the next video"). Unchanged when nothing is speech.
    """
    vad = VoiceActivity(aggressiveness)
    data = pcm.data
    speech = [i for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES) if vad.is_speech(data[i : i + FRAME_BYTES])]
    if not speech:
        return pcm
    pad = BYTES_PER_SECOND * pad_ms // 1000
    start = max(0, speech[0] - pad)
    end = min(len(data), speech[-1] + FRAME_BYTES + pad)
    start -= start % SAMPLE_WIDTH
    end -= end % SAMPLE_WIDTH
    if start == 0 and end == len(data):
        return pcm
    return Pcm.from_bytes(data[start:end])


class EndOfUtterance:
    """Says when a streaming speaker has stopped: after some speech, `silence_ms` of non-speech.

    Feed it PCM of any chunk size; it keeps the remainder between calls. A stream that never
    contains speech never ends by silence (the caller's own time limit handles that).
    """

    def __init__(self, silence_ms: int = 700, *, min_speech_ms: int = 150, aggressiveness: int = 2) -> None:
        self.silence_ms = silence_ms
        self.min_speech_ms = min_speech_ms
        self._vad = VoiceActivity(aggressiveness)
        self._pending = b""
        self.speech_ms = 0
        self.trailing_silence_ms = 0
        self.ended = False

    @property
    def heard_speech(self) -> bool:
        return self.speech_ms >= self.min_speech_ms

    def feed(self, pcm: bytes) -> bool:
        """Take more audio; True once the utterance has ended (and from then on)."""
        self._pending += pcm
        usable = len(self._pending) - len(self._pending) % FRAME_BYTES
        frames, self._pending = self._pending[:usable], self._pending[usable:]
        for i in range(0, usable, FRAME_BYTES):
            if self.ended:
                break
            if self._vad.is_speech(frames[i : i + FRAME_BYTES]):
                self.speech_ms += FRAME_MS
                self.trailing_silence_ms = 0
            else:
                self.trailing_silence_ms += FRAME_MS
                if self.heard_speech and self.trailing_silence_ms >= self.silence_ms:
                    self.ended = True
        return self.ended
