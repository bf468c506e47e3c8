"""The MLflow setting is one override file, and it only adds: the default stack (`make up`
without compose.mlflow.yaml) is the stack it was, service for service.

Compose's own view of both (`docker compose config`), no stack needed. The suite's stack
runs with the setting on (tests/e2e/test_mlflow.py); `make run` without it never imports
mlflow (tests/flows/test_make_run.py, tests/flows/test_tracking.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_required_settings import MLFLOW_REQUIRED, REQUIRED
from tests.support import run_in_repo

ENV = {**REQUIRED, **MLFLOW_REQUIRED}
MLFLOW_SERVICES = {"mlflow", "mlflow-init", "mlflow-users"}
# What the override adds to services of the default stack.
ADDED_ENV = {
    "remote-init": {
        "MLFLOW_ARTIFACTS_URL",
        "MLFLOW_S3_USER",
        "MLFLOW_S3_ACCESS_KEY_ID",
        "MLFLOW_S3_SECRET_ACCESS_KEY",
    },
    "deploy": {"MLFLOW_TRACKING_URI", "MLTOY_MLFLOW_UI_URL", "MLTOY_PROMOTION_METRIC"},
}


def config(tmp_path: Path, *files: str) -> dict:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    args = [arg for name in files for arg in ("-f", name)]
    result = run_in_repo(
        ["docker", "compose", "--env-file", str(env_file), *args, "config", "--format", "json"],
        check=True,
    )
    return json.loads(result.stdout)


def without_additions(name: str, service: dict) -> dict:
    service = json.loads(json.dumps(service))
    for key in ADDED_ENV.get(name, ()):
        service.get("environment", {}).pop(key, None)
    if name == "remote-init":
        service["volumes"] = [
            v for v in service["volumes"] if v["source"] != "mlflow-server-settings"
        ]
    if name == "deploy":
        service["depends_on"].pop("mlflow-users")
    return service


def test_the_default_stack_has_no_mlflow(prepared, tmp_path):
    default = config(tmp_path, "compose.yaml")
    assert not MLFLOW_SERVICES & set(default["services"])
    text = json.dumps(default)
    assert "MLFLOW_TRACKING_URI" not in text and "mlflow-server-settings" not in text


def test_the_mlflow_override_only_adds(prepared, tmp_path):
    default = config(tmp_path, "compose.yaml")
    with_mlflow = config(tmp_path, "compose.yaml", "compose.mlflow.yaml")
    assert set(with_mlflow["services"]) - set(default["services"]) == MLFLOW_SERVICES
    for name, service in default["services"].items():
        assert without_additions(name, with_mlflow["services"][name]) == service, name
    assert set(with_mlflow["volumes"]) - set(default["volumes"]) == {"mlflow-server-settings"}
    assert with_mlflow["services"]["deploy"]["environment"]["MLFLOW_TRACKING_URI"] == (
        "http://mlflow:5000"
    )
