"""`make env` (scripts/make_env.py): a .env nobody types, and never one overwritten."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.support import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts/make_env.py"
SECRETS = (
    "S3_ROOT_PASSWORD",
    "POSTGRES_PASSWORD",
    "GIT_PASSWORD",
    "GIT_FLOW_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "MLFLOW_ADMIN_PASSWORD",
    "REGISTRY_PASSWORD",
)


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_env", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_env(path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in load().example_keys()}
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path)],
        env={**clean, **environ},
        capture_output=True,
        text=True,
        check=True,
    )


def read(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


def test_writes_random_secrets_mode_600_and_given_settings(tmp_path: Path):
    given = {
        "DOCKER_GID": "998",
        "BASE_IMAGE": "b:1",
        "COMPOSE_FILE": "c.yaml",
        "PREFECT_PORT": "4300",
        "COMPOSE_PROJECT_NAME": "mine",
    }
    make_env(tmp_path / ".env", **given)
    make_env(tmp_path / "other.env", **given)
    first, second = read(tmp_path / ".env"), read(tmp_path / "other.env")
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    for key, value in given.items():
        assert first[key] == value
    values = [first[key] for key in SECRETS]
    assert len(set(values)) == len(values) and all(len(v) >= 32 for v in values)
    assert all(first[key] != second[key] for key in (*SECRETS, "PREFECT_AUTH_STRING"))
    assert first["PREFECT_AUTH_STRING"].startswith("admin:")
    assert first["GIT_USER"] == "developer"
    # Every required setting of .env.example is there, and compose's syntax holds.
    required = ("S3_ROOT_USER", "PREFECT_AUTH_STRING", "DOCKER_GID", "GIT_USER", *SECRETS)
    assert all(first.get(key) for key in required), first
    assert all(c.isalnum() or c in "-_" for v in values for c in v)


def test_notifications_are_written_off_unless_a_url_is_given(tmp_path: Path):
    """Compose refuses an unset variable as a secret's source (a fresh `make up` failed
    creating `deploy` without one): the key is always there, empty means off."""
    fixed = {"DOCKER_GID": "1", "BASE_IMAGE": "b", "COMPOSE_FILE": "c"}
    make_env(tmp_path / "off.env", **fixed)
    make_env(tmp_path / "on.env", **fixed, MLTOY_NOTIFY_URL="https://hooks.example/x")
    assert read(tmp_path / "off.env")["MLTOY_NOTIFY_URL"] == ""
    assert read(tmp_path / "on.env")["MLTOY_NOTIFY_URL"] == "https://hooks.example/x"


def test_never_overwrites_an_existing_env(tmp_path: Path):
    path = tmp_path / ".env"
    path.write_text("S3_ROOT_PASSWORD=mine\n")
    out = make_env(path, DOCKER_GID="1", BASE_IMAGE="b", COMPOSE_FILE="c")
    assert "left as is" in out.stdout
    assert path.read_text() == "S3_ROOT_PASSWORD=mine\n"


def test_stand_in_settings_only_where_the_registry_gives_nothing():
    module = load()
    assert module.registry_settings(lambda image: True) == {}
    assert module.registry_settings(lambda image: False) == {
        "BASE_IMAGE": "mltoy/debian-python:bookworm",
        "COMPOSE_FILE": "compose.yaml:compose.standin.yaml",
    }
    base_only = module.registry_settings(lambda image: image.startswith("python:"))
    assert base_only == {"COMPOSE_FILE": "compose.yaml:compose.standin.yaml"}
