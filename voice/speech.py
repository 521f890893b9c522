"""Text to speech: espeak-ng rendered to WAV bytes with no sound device involved.

Replies should pass through `voice.spoken.for_speech` first. Synthesis blocks (milliseconds per sentence),
so the async API runs it in a worker thread. Two paths render the same voice at the same rate: the
`espeak-ng` command, one process per reply (the default: bit-identical output, no shared state), and pyttsx3
in-process. pyttsx3 2.99 runs espeak-ng in its asynchronous mode and races with it (a render can return
before the audio is written, or come back empty when called from several threads), so it is guarded here
and used only when asked for or when the command is missing (docs/voice-speech.md has the measurements).
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from assistant.settings import Settings

log = logging.getLogger(__name__)

Backend = Literal["auto", "pyttsx3", "espeak-ng"]
MIN_RATE, MAX_RATE = 80, 450  # words per minute espeak-ng accepts
SUGGESTED_VOICES = ("gmw/en-us", "gmw/en", "gmw/en-gb-x-rp", "gmw/en-gb-scotland", "gmw/en-us-nyc", "gmw/de", "roa/fr")
# espeak renders hundreds of times faster than real time; a render this slow has hung, not worked.
TIMEOUT_SECONDS, TIMEOUT_PER_CHAR = 10.0, 0.01

# espeak-ng is initialised once per process and pyttsx3 hands every caller the same engine, so two
# threads rendering at once lose or mix output: one lock for the whole process.
_PYTTSX3_LOCK = threading.Lock()
_pyttsx3_engine: Any = None
_pyttsx3_errors: list[BaseException] = []


class SpeechError(RuntimeError):
    """Synthesis failed (no TTS engine on this machine, or the engine returned no audio)."""


class UnknownVoice(ValueError):
    """`TTS_VOICE` names a voice espeak-ng does not have."""


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """One espeak-ng voice: `id` is what `TTS_VOICE` takes ("gmw/en-us"); `language` also works ("en-us")."""

    id: str
    name: str
    language: str


# --- pyttsx3 -------------------------------------------------------------------------------------------------
def _quiet(*args: object, **kwargs: object) -> None:
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


def _pyttsx3() -> Any:
    """The process's one pyttsx3 engine (built on first use; call with `_PYTTSX3_LOCK` held)."""
    global _pyttsx3_engine  # one engine per process is espeak-ng's own rule
    if _pyttsx3_engine is None:
        import pyttsx3  # type: ignore[import-untyped]
        import pyttsx3.drivers.espeak as espeak_driver  # type: ignore[import-untyped]

        espeak_driver.print = _quiet  # it prints "Audio saved to …" on stdout for every file
        engine = pyttsx3.init("espeak")
        engine.connect("error", lambda name=None, exception=None: _pyttsx3_errors.append(exception or SpeechError()))
        # pyttsx3's first render runs a different, racier path (its loop ends before espeak-ng has applied the
        # rate, seen under load): spend it on a warm-up.
        with tempfile.TemporaryDirectory(prefix="crm-tts-") as folder:
            _pyttsx3_run(engine, "Ready.", "gmw/en", 175, Path(folder) / "warm-up.wav")
        _pyttsx3_engine = engine
    return _pyttsx3_engine


def _pyttsx3_voices() -> list[VoiceInfo]:
    with _PYTTSX3_LOCK:
        voices = _pyttsx3().getProperty("voices")
    return [VoiceInfo(v.id, v.name, (v.languages or [""])[0]) for v in voices]


def _pyttsx3_render(text: str, voice: str, rate: int, path: Path) -> None:
    with _PYTTSX3_LOCK:
        _pyttsx3_run(_pyttsx3(), text, voice, rate, path)


def _pyttsx3_run(engine: Any, text: str, voice: str, rate: int, path: Path) -> None:
    """One render through pyttsx3, guarded against the ways its espeak-ng driver ends early or never."""
    driver = engine.proxy._driver
    _pyttsx3_errors.clear()
    engine.setProperty("voice", voice)
    engine.setProperty("rate", rate)
    engine.save_to_file(text, str(path))
    deadline = time.monotonic() + TIMEOUT_SECONDS + TIMEOUT_PER_CHAR * len(text)
    # pyttsx3's loop never ends if writing the file fails after the first render: end it from outside.
    watchdog = threading.Timer(deadline - time.monotonic(), driver.endLoop)
    watchdog.start()
    try:
        engine.runAndWait()
    finally:
        watchdog.cancel()
    # The first runAndWait returns before espeak-ng (asynchronous here) has finished: wait for it.
    while driver._speaking and time.monotonic() < deadline:
        time.sleep(0.005)
    if driver._speaking or time.monotonic() >= deadline:
        raise SpeechError("pyttsx3 did not finish rendering")
    if _pyttsx3_errors:
        raise SpeechError(f"pyttsx3 failed: {_pyttsx3_errors[0]!r}")


# --- the espeak-ng command -------------------------------------------------------------------------------------
@functools.cache
def _cli_voices(executable: str, kind: str = "") -> list[VoiceInfo]:
    listing = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [executable, f"--voices={kind}" if kind else "--voices"], capture_output=True, text=True, check=True
    ).stdout
    voices = []
    for line in listing.splitlines()[1:]:
        fields = line.split()
        # Pty Language Age/Gender VoiceName File …; MBROLA voices ("mb/…") need data Debian does not ship here
        if len(fields) >= 5 and not fields[4].startswith("mb/"):
            voices.append(VoiceInfo(fields[4].lower(), fields[3].replace("_", " "), fields[1]))
    return voices


def _cli_render(executable: str, text: str, voice: str, rate: int, path: Path) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments; the text goes in on stdin, never as an option
            [executable, "-b", "1", "-v", voice, "-s", str(rate), "-w", str(path)],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT_SECONDS + TIMEOUT_PER_CHAR * len(text),
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SpeechError("espeak-ng did not finish rendering") from error
    if done.returncode != 0:
        raise SpeechError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()}")


# --- choosing a voice ------------------------------------------------------------------------------------------
def _key(text: str) -> str:
    return text.strip().lower().replace("_", " ")


def resolve_voice(wanted: str, voices: Sequence[VoiceInfo], variants: Sequence[VoiceInfo] = ()) -> str:
    """The voice id for `wanted` (an id, a language code or a name, optionally `+variant`), or `UnknownVoice`."""
    base, _, variant = wanted.partition("+")
    key = _key(base)
    found = (
        next((v for v in voices if v.id == key), None)
        or next((v for v in voices if _key(v.language) == key), None)
        or next((v for v in voices if _key(v.name) == key), None)
    )
    if found is None or not base:
        ids = {v.id for v in voices}
        some = ", ".join([i for i in SUGGESTED_VOICES if i in ids] or [v.id for v in voices[:8]])
        raise UnknownVoice(
            f"Unknown text-to-speech voice {wanted!r} (TTS_VOICE). Available voices include {some} "
            f"({len(voices)} in all; `espeak-ng --voices` lists them)."
        )
    if not variant:
        return found.id
    names = {_key(v.name) for v in variants} | {_key(v.id.rsplit("/", 1)[-1]) for v in variants}
    if variants and _key(variant) not in names:
        some = ", ".join(sorted(v.id.rsplit("/", 1)[-1] for v in variants)[:6])
        raise UnknownVoice(f"Unknown espeak-ng voice variant {variant!r} in {wanted!r} (TTS_VOICE); try {some}.")
    return f"{found.id}+{variant}"


# --- the speaker ------------------------------------------------------------------------------------------------
class Speaker:
    """Renders text to WAV bytes (22,050 Hz, mono, 16-bit) in one voice at one rate; safe to share across threads.

    `backend="auto"` uses the `espeak-ng` command where it is installed and pyttsx3 otherwise; a pyttsx3
    speaker whose render fails moves to the command for good. `backend` says which path is in use.
    """

    def __init__(self, voice: str = "gmw/en-us", rate: int = 175, *, backend: Backend = "auto") -> None:
        if not MIN_RATE <= rate <= MAX_RATE:
            raise ValueError(f"Speech rate {rate} (TTS_RATE) must be {MIN_RATE}–{MAX_RATE} words per minute.")
        self.rate = rate
        self._executable = shutil.which("espeak-ng")
        prefer_command = backend == "espeak-ng" or (backend == "auto" and self._executable is not None)
        self.backend: Literal["pyttsx3", "espeak-ng"] = "espeak-ng" if prefer_command else "pyttsx3"
        if self.backend == "espeak-ng":
            if self._executable is None:
                raise SpeechError("The espeak-ng command is not installed (Debian package espeak-ng).")
            voices = _cli_voices(self._executable)
        else:
            try:
                voices = _pyttsx3_voices()
            except Exception as error:
                raise SpeechError(f"pyttsx3 cannot drive espeak-ng here ({error!r}); install espeak-ng") from error
        variants = _cli_voices(self._executable, "variant") if self._executable and "+" in voice else []
        self.voice = resolve_voice(voice, voices, variants)
        log.info("Text to speech: %s (espeak-ng), voice %s, %d words/min", self.backend, self.voice, self.rate)

    @classmethod
    def from_settings(cls, settings: Settings, *, backend: Backend | None = None) -> Speaker:
        """The speaker `TTS_VOICE`, `TTS_RATE` and `TTS_BACKEND` describe."""
        chosen = backend or cast(Backend, settings.tts_backend)
        return cls(settings.tts_voice, settings.tts_rate, backend=chosen)

    def render(self, text: str) -> bytes:
        """WAV bytes for `text` (blocking: call from a worker thread, or use `synthesize`)."""
        if not text.strip():
            raise ValueError("There is no text to speak.")
        if self.backend == "pyttsx3":
            try:
                return self._rendered(lambda path: _pyttsx3_render(text, self.voice, self.rate, path))
            except SpeechError as error:
                if self._executable is None:
                    raise
                log.warning("pyttsx3 failed (%s): this speaker now uses the espeak-ng command", error)
                self.backend = "espeak-ng"
        executable = self._executable
        if executable is None:
            raise SpeechError("The espeak-ng command is not installed (Debian package espeak-ng).")
        return self._rendered(lambda path: _cli_render(executable, text, self.voice, self.rate, path))

    async def synthesize(self, text: str) -> bytes:
        """WAV bytes for `text`, rendered off the event loop."""
        return await asyncio.to_thread(self.render, text)

    @staticmethod
    def _rendered(write: Callable[[Path], None]) -> bytes:
        with tempfile.TemporaryDirectory(prefix="crm-tts-") as folder:
            path = Path(folder) / "speech.wav"
            write(path)
            data = path.read_bytes() if path.exists() else b""
        try:
            seconds = wav_duration(data)
        except ValueError:
            seconds = 0.0
        if seconds <= 0:
            raise SpeechError("The speech engine produced no audio.")
        return data


def available_voices(backend: Backend = "auto") -> list[VoiceInfo]:
    """The voices `TTS_VOICE` may name on this machine."""
    executable = shutil.which("espeak-ng")
    if backend == "pyttsx3" or executable is None:
        return _pyttsx3_voices()
    if executable is None:
        raise SpeechError("The espeak-ng command is not installed (Debian package espeak-ng).")
    return _cli_voices(executable)


def wav_duration(data: bytes) -> float:
    """Seconds of audio in a PCM WAV; `ValueError` for bytes that are not one."""
    try:
        with wave.open(io.BytesIO(data)) as audio:
            return float(audio.getnframes() / audio.getframerate())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"Not a PCM WAV: {error}") from error
