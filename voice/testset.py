"""A synthesised speech test set: CRM commands with the demo data's names, amounts and dates, spoken by
espeak-ng in several voices and rates, each with its known text and the intent it should reach.

    .venv/bin/python -m voice.testset [--out var/voice-testset] [--voices en-us,en-gb] [--rates 150,185]

writes one WAV per (sentence, voice, rate) and `manifest.json` describing them. bench/voice.py scores the
recognisers on it; the tests use `synthesise` for their own clips. espeak-ng is a Debian package
(`make setup` installs it). Its formant voice is harder to recognise than a person: a floor, not a forecast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "var" / "voice-testset"
VOICES = ("en-us", "en-gb")
RATES = (150, 185)
ESPEAK_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Sentence:
    """What a rep says and the intent (domain.yml) the assistant should recognise in it."""

    text: str
    intent: str


# Written the way reps talk to the CRM, about the demo data (crm_backend/demo.py): Nimbus Labs, Acme
# Corporation, Initech, Globex, Umbrella Health, Stark Logistics, Wayne Retail, Hooli; Dana Smith, Raj Patel,
# Lena Fischer, Tom Baker, Yuki Tanaka, Priya Nair. Numbers are written as a person would type them.
SENTENCES: tuple[Sentence, ...] = (
    Sentence("log a call with Dana at Nimbus, she wants a proposal by Friday", "log_activity"),
    Sentence("I just had a meeting with Raj at Acme, the budget is approved", "log_activity"),
    Sentence("add a note to Globex: Lena needs the pricing before the board meeting", "log_activity"),
    Sentence("record an email to Initech about the analytics add-on", "log_activity"),
    Sentence("just got off a call with Lena Fischer, she wants a discount of 10 percent", "log_activity"),
    Sentence("move the Initech deal to negotiation", "update_deal"),
    Sentence("mark the Globex deal as lost, they went with a competitor", "update_deal"),
    Sentence("change the Acme amount to 52,000 dollars", "update_deal"),
    Sentence("push the Nimbus close date out to December 15", "update_deal"),
    Sentence("we won the Stark Logistics deal", "update_deal"),
    Sentence("what's on my agenda tomorrow", "my_day"),
    Sentence("what have I got on this week", "my_day"),
    Sentence("any overdue tasks", "my_day"),
    Sentence("show me my open deals", "list_open_deals"),
    Sentence("which of my deals are in negotiation right now", "list_open_deals"),
    Sentence("what's in my pipeline", "list_open_deals"),
    Sentence("what stage is the Nimbus deal in", "deal_status"),
    Sentence("how much is the Hooli deal worth", "deal_status"),
    Sentence("when does the Umbrella Health deal close", "deal_status"),
    Sentence("give me an overview of Nimbus Labs", "account_overview"),
    Sentence("tell me about Wayne Retail", "account_overview"),
    Sentence("who is our contact at Globex", "find_contact"),
    Sentence("what's the phone number for Raj Patel", "find_contact"),
    Sentence("show me my new leads from the website", "list_leads"),
    Sentence("how hot is the Tom Baker lead", "lead_score"),
    Sentence("what's my forecast for this quarter", "forecast"),
    Sentence("how are we tracking against the forecast in the East", "forecast"),
    Sentence("remind me to call Acme tomorrow at 10", "create_task"),
    Sentence("add a task to send the contract to Initech by Monday", "create_task"),
    Sentence("book a 30 minute demo with Priya next Wednesday at 2", "book_meeting"),
    Sentence("schedule a meeting with Dana Smith next Tuesday at 3 pm", "book_meeting"),
    Sentence("new deal for Acme worth 75,000 dollars closing end of March", "create_deal"),
    Sentence("add Lena as a contact at Globex", "create_contact"),
    Sentence("convert Yuki Tanaka into a deal", "convert_lead"),
    Sentence("what is 18,500 euros in dollars", "convert_currency"),
    Sentence("what's new since this morning", "whats_new"),
    Sentence("set up a weekly call with Dana on Thursdays", "create_recurring"),
    Sentence("yes, go ahead", "affirm"),
    Sentence("no, don't save that", "deny"),
    Sentence("undo that", "undo"),
)


@dataclass(frozen=True)
class Utterance:
    """One WAV of the test set, as the manifest lists it."""

    id: str
    file: str
    text: str
    intent: str
    voice: str
    rate: int
    sentence: int
    duration_seconds: float


class SynthesisFailed(RuntimeError):
    """espeak-ng is missing or failed."""


def espeak_binary() -> str:
    """The espeak-ng executable, or SynthesisFailed saying how to install it."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise SynthesisFailed("espeak-ng is not installed (Debian package espeak-ng; `make setup` installs it)")
    return found


def synthesise(text: str, path: Path, *, voice: str = "en-us", rate: int = 160) -> Path:
    """Speak `text` into a WAV file at `path` (espeak-ng writes 22,050 Hz mono 16-bit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - a fixed executable with argument-vector arguments
        [espeak_binary(), "-v", voice, "-s", str(rate), "-w", str(path), "--", text],
        capture_output=True,
        text=True,
        timeout=ESPEAK_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0 or not path.exists():
        raise SynthesisFailed(f"espeak-ng failed for voice {voice}: {result.stderr.strip()[:300]}")
    return path


def wav_seconds(path: Path) -> float:
    """Length of a PCM WAV from its header."""
    import wave

    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def build(
    out: Path = DEFAULT_OUT,
    voices: Sequence[str] = VOICES,
    rates: Sequence[int] = RATES,
    sentences: Sequence[Sentence] = SENTENCES,
) -> list[Utterance]:
    """Synthesise every sentence in every voice and rate into `out`, and write `out/manifest.json`."""
    out.mkdir(parents=True, exist_ok=True)
    utterances: list[Utterance] = []
    for index, sentence in enumerate(sentences):
        for voice in voices:
            for rate in rates:
                ident = f"s{index:02d}-{voice}-{rate}"
                path = synthesise(sentence.text, out / f"{ident}.wav", voice=voice, rate=rate)
                utterances.append(
                    Utterance(
                        id=ident,
                        file=path.name,
                        text=sentence.text,
                        intent=sentence.intent,
                        voice=voice,
                        rate=rate,
                        sentence=index,
                        duration_seconds=round(wav_seconds(path), 3),
                    )
                )
    manifest = {
        "generator": "voice/testset.py (espeak-ng)",
        "voices": list(voices),
        "rates": list(rates),
        "sentences": len(sentences),
        "utterances": [asdict(u) for u in utterances],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return utterances


def load_manifest(folder: Path = DEFAULT_OUT) -> list[Utterance]:
    """The utterances of a built test set."""
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [Utterance(**u) for u in data["utterances"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--voices", default=",".join(VOICES), help="espeak-ng voices, comma-separated")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="words per minute, comma-separated")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        utterances = build(args.out, args.voices.split(","), [int(r) for r in args.rates.split(",")])
    except SynthesisFailed as exc:
        sys.stderr.write(f"voice test set: {exc}\n")
        return 1
    audio = sum(u.duration_seconds for u in utterances)
    sys.stderr.write(
        f"voice test set: {len(utterances)} utterances ({audio:.0f} s of audio) from {len(SENTENCES)} sentences "
        f"in {args.out} ({time.perf_counter() - started:.1f} s)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
