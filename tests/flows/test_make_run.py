"""The README's first command: `make run` in a fresh checkout, no server, no Docker; the
local Prefect server it starts in the background serves the next run, until
`make prefect-stop`."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import VENV, make_in_checkout
from harness.stack import free_port
from tests.support import REPO_ROOT, checkout_copy

IMPORTS = "import time:"  # PYTHONPROFILEIMPORTTIME's lines


@pytest.mark.slow
def test_make_run_in_a_fresh_checkout_prints_the_metrics(tmp_path):
    checkout = checkout_copy(tmp_path / "clone")
    assert not (checkout / "data/raw/iris.csv").exists()  # DVC-tracked, not in git
    env = {
        key: value
        for key, value in os.environ.items()
        # the embedded default: no server configured, no MLflow
        if not key.startswith(("PREFECT_", "MLFLOW_"))
    }
    home = tmp_path / "prefect-home"
    port = free_port()
    env["PREFECT_HOME"] = str(home)
    # Every Python process of `make run` reports each module it imports (to stderr).
    env["PYTHONPROFILEIMPORTTIME"] = "1"

    def make(*targets: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # with this venv: `make setup` is CI's job
            make_in_checkout(*targets, f"PREFECT_LOCAL_PORT={port}"),
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        errors = [line for line in result.stderr.splitlines() if not line.startswith(IMPORTS)]
        assert result.returncode == 0, result.stdout[-3000:] + "\n".join(errors[-50:])
        return result

    try:
        result = make("run")
        server = int((home / "server.pid").read_text())
        again = make("run")
        assert int((home / "server.pid").read_text()) == server  # the same server, kept
        assert "started a local Prefect server" not in again.stderr
        runs = api(port, "flow_runs/filter", {})
        logs = [finished_log(port, run["id"]) for run in runs]
        stopped = make("prefect-stop")
    finally:
        subprocess.run([VENV / "bin/prefect", "server", "stop"], env=env, capture_output=True)
    assert "started a local Prefect server in the background" in result.stderr
    # Both runs are in its UI, with their logs.
    assert sorted(run["state_type"] for run in runs) == ["COMPLETED", "COMPLETED"]
    assert all(logs), logs
    second = again.stdout.splitlines()
    assert [line for line in second if line.startswith("stage ")] == [
        f"stage {stage}: skipped" for stage in ("prepare", "train", "evaluate")
    ]
    # Nothing changed: the raw data was not checked again (no Python process for it).
    assert "deploy.raw_data" in result.stdout and "deploy.raw_data" not in again.stdout
    assert "Server stopped" in stopped.stdout
    # ... and this venv still imports the project from this repository, not the checkout.
    found = subprocess.run(
        [VENV / "bin/python", "-c", "import flows; print(flows.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert Path(found.stdout.strip()).resolve().parent == REPO_ROOT / "flows", found
    assert not (home / "server.pid").exists()
    assert gone(server)

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


def api(port: int, path: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def finished_log(port: int, run_id: str, timeout: float = 30) -> dict | None:
    """The run's last log line once the server has stored it (shortly after answering)."""
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_DESC", "limit": 5}
    deadline = time.monotonic() + timeout
    while True:
        for log in api(port, "logs/filter", body):
            if log["message"] == "Finished in state Completed()" and log["task_run_id"] is None:
                return log
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not Path(f"/proc/{pid}").exists()


def without_model_hashes(lock: Path) -> dict:
    document = yaml.safe_load(lock.read_text())
    for stage in document["stages"].values():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            if entry["path"] == "models/model.joblib":
                del entry["md5"], entry["size"]
    return document
