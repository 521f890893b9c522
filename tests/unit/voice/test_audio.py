"""Audio in: every upload format we accept decodes to 16 kHz mono PCM of the right length, bad uploads get a
status and a sentence, and silence / end of speech are detected. Real audio: espeak-ng speech and PyAV's encoders."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from voice.audio import (
    BYTES_PER_SECOND,
    AudioRejected,
    EndOfUtterance,
    Pcm,
    decode_to_pcm16k,
    encode_voice_note,
    is_silence,
    rms_dbfs,
    sniff_container,
    speech_frames,
    speech_share,
    trim_silence,
)
from voice.testset import synthesise

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_seconds": 60.0}


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """espeak-ng speech: 22,050 Hz mono 16-bit, as espeak writes it."""
    return synthesise(
        "move the Initech deal to negotiation", tmp_path_factory.mktemp("audio") / "speech.wav", voice="en-us"
    )


@pytest.fixture(scope="module")
def speech(speech_wav: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(speech_wav), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), wav.getframerate()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A PCM WAV of int16 samples, shape (n,) for mono or (n, channels)."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def encoded(samples: np.ndarray, rate: int, container: str, codec: str, out_rate: int) -> bytes:
    """The mono samples encoded by PyAV (FFmpeg) into `container` with `codec`, as a browser or phone would send."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=out_rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).copy(), format="s16", layout="mono")
        frame.sample_rate = rate
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(part):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def test_a_22khz_wav_is_resampled_to_16khz_and_keeps_its_length(
    speech_wav: Path, speech: tuple[np.ndarray, int]
) -> None:
    samples, rate = speech
    assert rate == 22050
    pcm = decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", **LIMITS)
    assert pcm.duration_seconds == pytest.approx(len(samples) / rate, abs=0.02)
    assert len(pcm.data) == pytest.approx(pcm.duration_seconds * BYTES_PER_SECOND, abs=2)
    assert rms_dbfs(pcm.data) == pytest.approx(rms_dbfs(samples.tobytes()), abs=1.0)


def test_stereo_is_downmixed_to_mono(speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    stereo = np.stack([samples, samples], axis=1)
    pcm = decode_to_pcm16k(wav_bytes(stereo, rate), "audio/x-wav", **LIMITS)
    assert pcm.duration_seconds == pytest.approx(len(samples) / rate, abs=0.02)
    assert not is_silence(pcm)
    assert abs(rms_dbfs(pcm.data) - rms_dbfs(samples.tobytes())) < 4.0  # same speech, one channel


def test_8khz_audio_is_upsampled_not_rejected(speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    narrow = encoded(samples, rate, "wav", "pcm_s16le", 8000)
    with wave.open(io.BytesIO(narrow), "rb") as wav:
        assert wav.getframerate() == 8000
    pcm = decode_to_pcm16k(narrow, "audio/wav", **LIMITS)
    assert pcm.duration_seconds == pytest.approx(len(samples) / rate, abs=0.05)
    assert not is_silence(pcm)


@pytest.mark.parametrize(
    ("container", "codec", "rate", "content_type"),
    [
        ("ogg", "libopus", 48000, "audio/ogg; codecs=opus"),
        ("webm", "libopus", 48000, "audio/webm;codecs=opus"),
        ("mp3", "libmp3lame", 44100, "audio/mpeg"),
        ("flac", "flac", 44100, "audio/flac"),
        ("mp4", "aac", 44100, "audio/mp4"),
    ],
)
def test_compressed_uploads_decode_to_the_same_speech(
    speech: tuple[np.ndarray, int], container: str, codec: str, rate: int, content_type: str
) -> None:
    samples, source_rate = speech
    data = encoded(samples, source_rate, container, codec, rate)
    pcm = decode_to_pcm16k(data, content_type, **LIMITS)
    # Codecs add a few tens of milliseconds of priming/padding, never more.
    assert pcm.duration_seconds == pytest.approx(len(samples) / source_rate, abs=0.12)
    assert not is_silence(pcm)


def test_the_container_is_recognised_from_its_bytes_not_its_name() -> None:
    assert sniff_container(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_container(b"OggS\x00\x02") == "ogg"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x9f") == "matroska"
    assert sniff_container(b"ID3\x04\x00") == "mp3"
    assert sniff_container(b"#EXTM3U\nhttp://example.invalid/a.ts\n") is None  # a playlist is never opened


def test_an_empty_body_is_a_400() -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(b"", "audio/wav", **LIMITS)
    assert caught.value.status == 400
    assert "empty" in caught.value.message


@pytest.mark.parametrize(
    "data",
    [b"this is a text file, not a recording" * 20, bytes(range(256)) * 16, b"RIFF\x24\x00\x00\x00WAVEfmt "],
    ids=["text", "random-bytes", "truncated-header"],
)
def test_bytes_that_are_not_audio_get_a_clear_415(data: bytes) -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(data, None, **LIMITS)
    assert caught.value.status == 415
    assert "WAV" in caught.value.message  # says what to send instead


def test_a_non_audio_content_type_is_refused_before_decoding(speech_wav: Path) -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(speech_wav.read_bytes(), "text/plain", **LIMITS)
    assert caught.value.status == 415
    assert "text/plain" in caught.value.message


def test_an_unsupported_codec_is_a_415_that_says_codec(speech_wav: Path) -> None:
    data = bytearray(speech_wav.read_bytes())
    data[20:22] = struct.pack("<H", 0x1234)  # a WAV format tag no decoder knows
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(bytes(data), "audio/wav", **LIMITS)
    assert caught.value.status == 415
    assert "codec" in caught.value.message


def test_a_recording_cut_off_mid_way_keeps_what_arrived(speech_wav: Path) -> None:
    data = speech_wav.read_bytes()
    pcm = decode_to_pcm16k(data[: len(data) // 2], "audio/wav", **LIMITS)
    assert 0.5 < pcm.duration_seconds < decode_to_pcm16k(data, "audio/wav", **LIMITS).duration_seconds


def test_an_upload_over_the_size_limit_is_a_413_naming_the_limit(speech_wav: Path) -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", max_bytes=64 * 1024, max_seconds=60)
    assert caught.value.status == 413
    assert "64 KB" in caught.value.message


def test_a_recording_over_the_duration_limit_is_a_413_naming_the_limit(speech_wav: Path) -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", max_bytes=10**7, max_seconds=1.5)
    assert caught.value.status == 413
    assert "1.5 seconds" in caught.value.message


def test_a_small_file_that_decodes_to_hours_stops_at_the_duration_limit() -> None:
    # Ten minutes of silence compresses to a few KB of FLAC; decoding stops at the limit, not at the end.
    silence = np.zeros(16000 * 600, dtype=np.int16)
    data = encoded(silence, 16000, "flac", "flac", 16000)
    assert len(data) < 200_000
    with pytest.raises(AudioRejected) as caught:
        decode_to_pcm16k(data, "audio/flac", max_bytes=10**7, max_seconds=30)
    assert caught.value.status == 413


def test_silence_decodes_and_is_recognised_as_silence() -> None:
    quiet = (np.random.default_rng(1).normal(0, 20, 16000 * 2)).astype(np.int16)  # room hiss, about -64 dBFS
    pcm = decode_to_pcm16k(wav_bytes(quiet, 16000), "audio/wav", **LIMITS)
    assert pcm.duration_seconds == pytest.approx(2.0, abs=0.01)
    assert is_silence(pcm)
    assert is_silence(Pcm.from_bytes(bytes(32000)))


def test_speech_is_not_silence(speech_wav: Path) -> None:
    assert not is_silence(decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", **LIMITS))


def test_end_of_utterance_comes_after_the_speaker_stops(speech_wav: Path) -> None:
    pcm = decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", **LIMITS).data
    stream = pcm + bytes(BYTES_PER_SECOND * 2)  # two seconds of silence after the speech
    detector = EndOfUtterance(silence_ms=700)
    chunk = 3200  # 100 ms, as a browser sends
    ended_at = None
    for offset in range(0, len(stream), chunk):
        if detector.feed(stream[offset : offset + chunk]):
            ended_at = (offset + chunk) / BYTES_PER_SECOND
            break
    assert ended_at is not None and detector.heard_speech
    speech_end = len(pcm) / BYTES_PER_SECOND
    # espeak leaves a little silence of its own at the end; the cut comes 0.7 s into the pause, give or take.
    assert speech_end - 0.5 < ended_at < speech_end + 0.9


def test_a_stream_of_silence_never_ends_by_silence() -> None:
    detector = EndOfUtterance(silence_ms=300)
    assert not any(detector.feed(bytes(3200)) for _ in range(30))
    assert not detector.heard_speech


def test_trimming_drops_the_quiet_before_and_after_speech_and_keeps_the_speech(speech_wav: Path) -> None:
    speech_pcm = decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", **LIMITS)
    quiet = b"\0\0" * 16000 * 2  # two seconds either side, as a voice note often has
    padded = Pcm.from_bytes(quiet + speech_pcm.data + quiet)
    trimmed = trim_silence(padded)
    assert trimmed.duration_seconds < speech_pcm.duration_seconds + 0.8
    assert trimmed.duration_seconds > speech_pcm.duration_seconds - 0.6  # espeak's own edges may go too
    assert not is_silence(trimmed)


def test_trimming_leaves_a_recording_without_speech_alone() -> None:
    quiet = Pcm.from_bytes(b"\0\0" * 16000)
    assert trim_silence(quiet) == quiet


def test_speech_frames_say_where_the_speech_is(speech_wav: Path) -> None:
    speech_pcm = decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", **LIMITS)
    second = b"\0\0" * 16000
    frames = speech_frames(Pcm.from_bytes(second + speech_pcm.data + second))
    assert len(frames) == int((2 + speech_pcm.duration_seconds) * 1000) // 30
    assert not any(frames[:33]) and not any(frames[-33:])  # the quiet second either side
    assert speech_share(frames, 0.0, 0.9) == 0.0
    assert speech_share(frames, 1.0, 1.0 + speech_pcm.duration_seconds) > 0.6
    assert speech_share(frames, 99.0, 100.0) == 1.0  # past the end: nothing to say it is not speech


def test_a_voice_note_is_ogg_opus_of_the_same_length(speech_wav: Path) -> None:
    note = encode_voice_note(speech_wav.read_bytes())
    assert note[:4] == b"OggS"
    with av.open(io.BytesIO(note), format="ogg") as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    original = decode_to_pcm16k(speech_wav.read_bytes(), "audio/wav", **LIMITS)
    again = decode_to_pcm16k(note, "audio/ogg", **LIMITS)
    assert again.duration_seconds == pytest.approx(original.duration_seconds, abs=0.1)
    assert not is_silence(again)
