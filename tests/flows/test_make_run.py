"""The README's first command: `make run` in a fresh checkout, no server, no Docker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, checkout_copy


@pytest.mark.slow
def test_make_run_in_a_fresh_checkout_prints_the_metrics(tmp_path):
    checkout = checkout_copy(tmp_path / "clone")
    assert not (checkout / "data/raw/iris.csv").exists()  # DVC-tracked, not in git
    env = {
        key: value
        for key, value in os.environ.items()
        # the embedded default: a temporary server, no MLflow
        if not key.startswith(("PREFECT_", "MLFLOW_"))
    }
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    # Every Python process of `make run` reports each module it imports (to stderr).
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    venv = Path(sys.executable).parent.parent  # reuse this venv: `make setup` is CI's job
    result = subprocess.run(
        ["make", "run", f"VENV={venv}"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 0, result.stdout[-3000:] + "\n".join(errors[-50:])
    lines = result.stdout.splitlines()
    accuracy = [line for line in lines if line.startswith("accuracy: ")]
    f1 = [line for line in lines if line.startswith("f1_macro: ")]
    assert accuracy and float(accuracy[0].split()[1]) > 0.85
    assert f1 and 0 < float(f1[0].split()[1]) <= 1
    assert "stage prepare: ran" in lines
    # The committed dvc.lock is current: the run reproduced every hash but the model's,
    # whose bytes depend on the CPU's BLAS kernel (flows/dvc_lock.py).
    assert without_model_hashes(checkout / "dvc.lock") == without_model_hashes(
        REPO_ROOT / "dvc.lock"
    )
    # No MLflow tracking without MLFLOW_TRACKING_URI, and no import of it either.
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "flows.option_a" in imported  # the report is there to read (flows.cli runs as __main__)
    assert not [name for name in imported if name.split(".")[0] == "mlflow"]
    assert "flows.tracking" not in imported and "flows.registry" not in imported


def without_model_hashes(lock: Path) -> dict:
    document = yaml.safe_load(lock.read_text())
    for stage in document["stages"].values():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            if entry["path"] == "models/model.joblib":
                del entry["md5"], entry["size"]
    return document
