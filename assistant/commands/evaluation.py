"""`crm-assistant eval nlu` (the trained model on the held-out split, with a scikit-learn baseline) and
`crm-assistant bench nlu` (the same, plus the time of a forced training), written as JSON.

The figures come from `assistant.nlu_eval`; the e2e test computes them the same way over Rasa's HTTP API.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant import nlu_eval
from assistant.commands import Handler, say
from assistant.settings import Settings

HELDOUT = Path("tests") / "nlu" / "heldout.yml"
TRAINING = Path("nlu_data")
PARSE_SCRIPT = Path(__file__).resolve().parents[1] / "rasa_parse.py"
SECONDS_PER_TEXT = 2.0  # parse-time budget per example, on top of the model's start-up budget


class EvaluationFailed(RuntimeError):
    """The evaluation could not run: no model, no data, or the parser failed."""


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("eval", help="measure the assistant (nlu: the Rasa model on the held-out split)")
    what = p.add_subparsers(dest="eval_what", required=True)
    n = what.add_parser("nlu", help="intent and entity figures on tests/nlu/heldout.yml, with a baseline")
    n.add_argument("--out", type=Path, help="the full JSON report (default: var/nlu-eval.json)")
    n.add_argument("--model", type=Path, help="a trained model .tar.gz (default: the current one, trained if needed)")
    return {"eval": cmd_eval}


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    return EVALUATIONS[args.eval_what](settings, args)


def add_bench(benches: Any) -> dict[str, Handler]:
    p = benches.add_parser("nlu", help="train the Rasa model (forced, timed), then evaluate it on the held-out split")
    p.add_argument("--out", type=Path, help="the JSON report (default: bench/results/nlu-<date>.json)")
    return {"nlu": cmd_bench_nlu}


# --- data and parsing -----------------------------------------------------------------------------------
def load_split(root: Path) -> tuple[nlu_eval.NluData, list[nlu_eval.Example], list[nlu_eval.Example]]:
    """The training data under nlu_data/, and the held-out examples split into unseen and left out."""
    training = nlu_eval.NluData()
    folder = root / TRAINING
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml"}):
        training.extend(nlu_eval.read_nlu(path.read_text(encoding="utf-8"), str(path.relative_to(root))))
    heldout_path = root / HELDOUT
    if not heldout_path.exists():
        raise EvaluationFailed(f"no held-out set at {heldout_path}")
    heldout = nlu_eval.read_nlu(heldout_path.read_text(encoding="utf-8"), str(HELDOUT))
    if not training.examples or not heldout.examples:
        raise EvaluationFailed(f"no examples in {folder} or {heldout_path}")
    unseen, left_out = nlu_eval.split_unseen(training.examples, heldout.examples)
    return training, unseen, left_out


def parse_with_model(settings: Settings, model: Path, texts: list[str]) -> list[nlu_eval.Parse]:
    """Every text through the model, in one Rasa process (assistant/rasa_parse.py in the Rasa venv)."""
    from assistant.training import rasa_environment

    python = settings.rasa_venv / "bin" / "python"
    if not python.exists():
        raise EvaluationFailed(f"no Rasa virtual environment at {settings.rasa_venv} (run `make setup`)")
    lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    timeout = settings.startup_timeout_seconds + SECONDS_PER_TEXT * len(texts)
    try:
        result = subprocess.run(  # noqa: S603 - our own script, run by the Rasa venv's interpreter
            [str(python), str(PARSE_SCRIPT), str(model)],
            input=lines,
            capture_output=True,
            text=True,
            cwd=settings.project_root,
            env=rasa_environment(settings),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EvaluationFailed(f"parsing {len(texts)} texts took longer than {timeout:.0f} s") from exc
    if result.returncode != 0:
        raise EvaluationFailed(f"the Rasa parser failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    parses = [nlu_eval.parse_from_json(json.loads(line)) for line in result.stdout.splitlines() if line.strip()]
    if len(parses) != len(texts):
        raise EvaluationFailed(f"the Rasa parser answered {len(parses)} of {len(texts)} texts")
    return parses


def run_evaluation(settings: Settings, model: Path) -> dict[str, Any]:
    """The held-out figures of `model`, as a JSON-ready report."""
    training, unseen, left_out = load_split(settings.project_root)
    say(f"parsing {len(unseen)} held-out examples with {model.name} (loading the model takes a while)...")
    started = time.perf_counter()
    parses = parse_with_model(settings, model, [e.text for e in unseen])
    parse_s = time.perf_counter() - started
    report = nlu_eval.evaluate(training, unseen, parses, left_out=len(left_out))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.name,
        "heldout": str(HELDOUT),
        "parse_s": round(parse_s, 1),
        **report,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fail(message: str) -> int:
    sys.stderr.write(f"eval nlu: {message}\n")
    return 1


# --- commands --------------------------------------------------------------------------------------------
def cmd_eval_nlu(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.training import ensure_model

    try:
        if args.model is not None:
            if not args.model.is_file():
                return _fail(f"no model file at {args.model}")
            model = args.model
        else:
            say("checking the Rasa model (trains only when config.yml, domain.yml or nlu_data/ changed)...")
            model, trained = ensure_model(settings)
            say(f"model: {model.name} ({'trained now' if trained else 'up to date'})")
        report = run_evaluation(settings, model)
    except (nlu_eval.TrainingDataError, RuntimeError) as exc:  # EvaluationFailed, or Rasa training failed
        return _fail(str(exc))
    out = args.out or settings.var_dir / "nlu-eval.json"
    write_report(report, out)
    say(nlu_eval.summary_text(report))
    say(f"full report: {out}")
    return 0


def cmd_bench_nlu(settings: Settings, args: argparse.Namespace) -> int:
    import psutil

    from assistant.training import ensure_model

    try:
        say("training the Rasa model (forced, timed)...")
        started = time.perf_counter()
        model, _ = ensure_model(settings, force=True)
        training_s = time.perf_counter() - started
        say(f"trained {model.name} in {training_s:.0f} s")
        report = run_evaluation(settings, model)
    except (nlu_eval.TrainingDataError, RuntimeError) as exc:
        return _fail(str(exc))
    report = {
        **report,
        "training_s": round(training_s, 1),
        "machine": {
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    day = datetime.now(UTC).date().isoformat()
    out = args.out or settings.project_root / "bench" / "results" / f"nlu-{day}.json"
    write_report(report, out)
    say(nlu_eval.summary_text(report))
    say(f"training time (forced): {training_s:.1f} s")
    say(f"full report: {out}")
    return 0


EVALUATIONS: dict[str, Handler] = {"nlu": cmd_eval_nlu}
