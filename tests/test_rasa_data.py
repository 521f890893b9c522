"""The training data and the dialogue, checked by Rasa's own tools in the Rasa environment."""

from __future__ import annotations

import subprocess

from assistant.settings import Settings
from assistant.training import model_path, rasa_environment, rasa_executable, validate_data


def test_rasa_data_validate_passes_without_warnings() -> None:
    result = validate_data(Settings())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_conversation_stories_are_predicted_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    model = model_path(settings)
    assert model.exists(), "run `crm-assistant train` first (make test does)"
    result = subprocess.run(
        [
            str(rasa_executable(settings)),
            "test",
            "core",
            "--model",
            str(model),
            "--stories",
            str(settings.project_root / "tests" / "test_stories.yml"),
            "--out",
            str(tmp_path),
            "--fail-on-prediction-errors",
            "--no-plot",
        ],
        cwd=settings.project_root,
        env=rasa_environment(settings),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
