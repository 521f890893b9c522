from __future__ import annotations

import shutil
from pathlib import Path

from assistant.settings import Settings
from assistant.training import fingerprint, model_path

ROOT = Path(__file__).resolve().parents[3]


def project_copy(tmp_path: Path) -> Path:
    for name in ("config.yml", "domain.yml", "endpoints.yml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "nlu_data", tmp_path / "nlu_data")
    return tmp_path


def test_fingerprint_is_stable_for_unchanged_inputs(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    assert fingerprint(root) == fingerprint(root) == fingerprint(ROOT)


def test_fingerprint_changes_when_training_data_config_or_domain_change(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    before = fingerprint(root)
    seen = {before}
    for path, extra in (
        (root / "nlu_data" / "general.yml", "\n"),
        (root / "config.yml", "\n# tuned\n"),
        (root / "domain.yml", "\n"),
    ):
        path.write_text(path.read_text() + extra)
        seen.add(fingerprint(root))
    (root / "nlu_data" / "more.yml").write_text('version: "3.1"\n')
    seen.add(fingerprint(root))
    assert len(seen) == 5


def test_fingerprint_ignores_files_that_do_not_shape_the_model(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    before = fingerprint(root)
    (root / "endpoints.yml").write_text("action_endpoint:\n  url: http://elsewhere/webhook\n")
    (root / "README.md").write_text("changed")
    assert fingerprint(root) == before


def test_model_file_is_named_after_the_fingerprint(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    settings = Settings(CRM_PROJECT_ROOT=root, RASA_MODELS_DIR=tmp_path / "models")
    assert model_path(settings).name == f"crm-{fingerprint(root)}.tar.gz"
