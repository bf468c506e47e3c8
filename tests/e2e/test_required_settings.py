"""Missing required .env values stop compose before anything starts."""

from __future__ import annotations

import os

import pytest

from harness.stack import remove_leftovers
from tests.e2e.stack import PROJECT, containers_labelled
from tests.support import run_in_repo

REQUIRED = {
    "S3_ROOT_USER": "x",
    "S3_ROOT_PASSWORD": "y",
    "POSTGRES_PASSWORD": "z",
    "DOCKER_GID": "0",
    "PREFECT_AUTH_STRING": "u:p",
    "GIT_USER": "dev",
    "GIT_PASSWORD": "w",
    "GIT_FLOW_PASSWORD": "v",
}


def compose_without(tmp_path, values: dict[str, str], missing: str, *args: str):
    """`docker compose ARGS` with an env file of `values` but `missing`, and none of them
    in the process environment."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items() if k != missing))
    clean_env = {k: v for k, v in os.environ.items() if k not in values}
    compose = ["docker", "compose", "--env-file", str(env_file), "-p", f"{PROJECT}-envcheck"]
    return run_in_repo([*compose, *args], clean_env, timeout=60)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_up_fails_fast_naming_the_missing_variable(prepared, tmp_path, missing):
    result = compose_without(tmp_path, REQUIRED, missing, "up", "-d")
    assert result.returncode != 0
    assert f"{missing} is required" in result.stderr
    assert containers_labelled(f"com.docker.compose.project={PROJECT}-envcheck") == []


MLFLOW_REQUIRED = {"MLFLOW_DB_PASSWORD": "a" * 16, "MLFLOW_ADMIN_PASSWORD": "b" * 16}


@pytest.mark.parametrize("missing", sorted(MLFLOW_REQUIRED))
def test_the_mlflow_setting_fails_fast_naming_its_missing_variable(prepared, tmp_path, missing):
    """compose.mlflow.yaml's own required values: no default password for MLflow either."""
    files = ("-f", "compose.yaml", "-f", "compose.mlflow.yaml")
    result = compose_without(
        tmp_path, {**REQUIRED, **MLFLOW_REQUIRED}, missing, *files, "config", "--quiet"
    )
    assert result.returncode != 0
    assert f"{missing} is required with compose.mlflow.yaml" in result.stderr


def test_the_env_make_env_writes_starts_the_deploy_step(prepared, tmp_path):
    """`make env`'s .env, with nothing optional given (no notification URL), is enough for
    compose to start `deploy`, the service that holds the notification URL's secret (it
    refused while the secret's variable was unset: every such `make up` failed). Only that
    container, with no command, then removed."""
    env_file = tmp_path / ".env"
    project = f"{PROJECT}-envmade"
    images = {key: value for key, value in prepared.items() if key.endswith("_IMAGE")}
    # Its own names for what compose.yaml names outright (a real stack's stay untouched).
    names = {"MLTOY_NETWORK": project, "MLTOY_SETTINGS_VOLUME": f"{project}-remote-settings"}
    settings = {**images, "COMPOSE_FILE": prepared["COMPOSE_FILES"], **names}
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTOY_", "COMPOSE_"))}
    run_in_repo(["python3", "scripts/make_env.py", str(env_file)], clean_env | settings, check=True)
    compose = ["docker", "compose", "--env-file", str(env_file), "-p", project]
    try:
        started = run_in_repo(
            [*compose, "run", "--no-deps", "--rm", "--entrypoint", "true", "deploy"], clean_env
        )
        assert started.returncode == 0, started.stderr[-2000:]
    finally:
        remove_leftovers(project)  # a one-off that failed to start outlives `down`
