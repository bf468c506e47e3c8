"""scripts/prefect_local.py: which Prefect API `make run` uses, and when it starts a server."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from tests.support import REPO_ROOT


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "prefect_local", REPO_ROOT / "scripts/prefect_local.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROFILES = """active = "local"

[profiles.ephemeral]
PREFECT_SERVER_EPHEMERAL_ENABLED = "true"

[profiles.local]
PREFECT_API_URL = "http://127.0.0.1:4201/api"
"""


def test_the_environment_then_the_active_profile_name_the_api(tmp_path):
    configured_url = load().configured_url
    (tmp_path / "profiles.toml").write_text(PROFILES)
    home = {"PREFECT_HOME": str(tmp_path)}
    assert configured_url(home) == "http://127.0.0.1:4201/api"
    assert configured_url({**home, "PREFECT_API_URL": "http://h:1/api"}) == "http://h:1/api"
    assert configured_url({**home, "PREFECT_PROFILE": "ephemeral"}) is None
    moved = tmp_path / "elsewhere.toml"
    moved.write_text(PROFILES.replace("4201", "4999"))
    assert configured_url({**home, "PREFECT_PROFILES_PATH": str(moved)}).endswith(":4999/api")


def test_no_profile_or_an_unreadable_one_names_none(tmp_path):
    configured_url = load().configured_url
    assert configured_url({"PREFECT_HOME": str(tmp_path)}) is None
    (tmp_path / "profiles.toml").write_text("active = [")
    assert configured_url({"PREFECT_HOME": str(tmp_path)}) is None


def test_a_stale_pid_file_is_removed_and_means_no_server(tmp_path):
    background_server = load().background_server
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(str(os.getpid()))  # alive, but this test, not a Prefect server
    assert background_server(tmp_path) is None
    assert not pid_file.exists()
    pid_file.write_text("not a pid")
    assert background_server(tmp_path) is None
    assert not pid_file.exists()
    assert background_server(tmp_path) is None  # no file at all


def test_a_running_server_is_found_with_its_port(tmp_path, monkeypatch):
    module = load()
    (tmp_path / "server.pid").write_text("4242")
    argv = ["python", "-m", "uvicorn", "--factory", module.SERVER_APP, "--port", "4201"]
    real_read_bytes = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if str(path) == "/proc/4242/cmdline":
            return "\0".join(argv).encode() + b"\0"
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert module.background_server(tmp_path) == (4242, "4201")
    assert (tmp_path / "server.pid").exists()
