"""Training the Rasa model only when its inputs changed.

The fingerprint covers config.yml, domain.yml (or domain/), everything under nlu_data/ and the
Rasa version; the model is stored as models/crm-<fingerprint>.tar.gz, so an unchanged project
starts without training, and a changed one trains exactly once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path

from assistant.settings import Settings

log = logging.getLogger(__name__)

RASA_VERSION = "3.6.21"
MODEL_PREFIX = "crm-"


def training_inputs(root: Path) -> list[Path]:
    """The files whose content defines the model, in a stable order."""
    files = [root / "config.yml", root / "domain.yml"]
    for folder in (root / "domain", root / "nlu_data"):
        if folder.is_dir():
            files.extend(sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml"}))
    return [f for f in files if f.exists()]


def fingerprint(root: Path) -> str:
    digest = hashlib.sha256(f"rasa=={RASA_VERSION}\n".encode())
    for path in training_inputs(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(settings: Settings) -> Path:
    return settings.models_dir / f"{MODEL_PREFIX}{fingerprint(settings.project_root)}.tar.gz"


def rasa_executable(settings: Settings) -> Path:
    return settings.rasa_venv / "bin" / "rasa"


def rasa_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.child_environment())
    return env


def ensure_model(settings: Settings, force: bool = False) -> tuple[Path, bool]:
    """The model for the current inputs, training it first if it does not exist yet.

    Returns the model path and whether training ran. Older crm-*.tar.gz models are removed.
    """
    target = model_path(settings)
    if target.exists() and not force:
        return target, False
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    root = settings.project_root
    cmd = [
        str(rasa_executable(settings)),
        "train",
        "--config",
        str(root / "config.yml"),
        "--domain",
        str(root / ("domain" if (root / "domain").is_dir() else "domain.yml")),
        "--data",
        str(root / "nlu_data"),
        "--out",
        str(settings.models_dir),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
        "--quiet",
    ]
    log.info("training the Rasa model (inputs changed): %s", target.name)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_file = settings.logs_dir / "train.log"
    with log_file.open("w") as out:
        result = subprocess.run(
            cmd, cwd=root, env=rasa_environment(settings), stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0 or not target.exists():
        raise RuntimeError(f"Rasa training failed (exit {result.returncode}); see {log_file}")
    for old in settings.models_dir.glob(f"{MODEL_PREFIX}*.tar.gz"):
        if old != target:
            old.unlink()
    return target, True


def validate_data(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`rasa data validate` over the training data; the caller decides what a failure means."""
    root = settings.project_root
    cmd = [
        str(rasa_executable(settings)),
        "data",
        "validate",
        "--fail-on-warnings",
        "--config",
        str(root / "config.yml"),
        "--domain",
        str(root / "domain.yml"),
        "--data",
        str(root / "nlu_data"),
    ]
    return subprocess.run(cmd, cwd=root, env=rasa_environment(settings), capture_output=True, text=True, check=False)
