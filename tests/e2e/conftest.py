"""The end-to-end suite: one compose stack, built and brought up once per session.

The stack is the user's compose.yaml (plus compose.standin.yaml where MinIO cannot be
pulled), driven through pytest-docker with an env file of fresh secrets. On failure the
containers' logs are dumped; at the end `down -v` must leave nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from tests.e2e.stack import PROJECT, Stack, stack_env
from tests.support import REPO_ROOT

LOG_DIR = REPO_ROOT / ".e2e-logs"


# The suite shares one stack: the user-facing behaviour first (it expects a fresh
# remote), then security checks, then the faults that stop and kill parts of it.
ORDER = ("test_required_settings", "test_stack", "test_security", "test_faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return ORDER.index(item.path.stem) if item.path.stem in ORDER else len(ORDER)

    e2e = [item for item in items if "tests/e2e/" in str(item.path)]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    others = [item for item in items if item not in e2e]
    items[:] = others + sorted(e2e, key=rank)


@pytest.fixture(scope="session")
def prepared() -> dict[str, str]:
    """Docker engine, base image and our images: built once per session."""
    result = subprocess.run(
        ["scripts/e2e-prepare.sh"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/e2e-prepare.sh failed ({result.returncode}); see its output above")
    return dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)


@pytest.fixture(scope="session")
def env_file(prepared: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    gid = os.stat("/var/run/docker.sock").st_gid
    path = tmp_path_factory.mktemp("e2e") / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in stack_env(prepared, gid).items()))
    path.chmod(0o600)
    return path


def _compose(env_file: Path) -> str:
    return f"docker compose --env-file {env_file}"


@pytest.fixture(scope="session")
def docker_compose_command(env_file: Path) -> str:
    return _compose(env_file)


@pytest.fixture(scope="session")
def docker_compose_file(prepared: dict[str, str]) -> list[str]:
    return [str(REPO_ROOT / name) for name in prepared["COMPOSE_FILES"].split(":")]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Leftovers of an aborted run first; then up, healthy, and the deploy one-shot done.
    return ["down -v --remove-orphans", "up -d --wait --no-build", "wait deploy"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v --remove-orphans"]


def _leftovers() -> list[str]:
    found = []
    for kind in ("container", "volume", "network"):
        args = [
            "docker",
            kind,
            "ls",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
        ]
        if kind == "container":
            args.insert(3, "-a")
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
        found += [f"{kind} {name}" for name in out]
    flow_containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"network={PROJECT}-net"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return found + [f"flow container {c}" for c in flow_containers]


@pytest.fixture(scope="session")
def nothing_left_behind() -> Iterator[None]:
    """Set up before the stack, so its check runs after the stack's `down -v`."""
    yield
    leftovers = _leftovers()
    assert not leftovers, f"`down -v` left behind: {leftovers}"


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest,
    nothing_left_behind: None,
    env_file: Path,
    docker_compose_file: list[str],
    docker_services: object,
) -> Iterator[Stack]:
    env = dict(line.split("=", 1) for line in env_file.read_text().split())
    api_url = f"http://127.0.0.1:{env['PREFECT_PORT']}/api"
    settings = {PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: env["PREFECT_AUTH_STRING"]}
    with temporary_settings(settings), get_client(sync_client=True) as client:
        stack = Stack(env_file, env, docker_compose_file, client)
        yield stack
    if request.session.testsfailed:
        dump_logs(stack)


def dump_logs(stack: Stack) -> None:
    """Every container's log, to .e2e-logs/ and (tail) to the terminal."""
    LOG_DIR.mkdir(exist_ok=True)
    logs = stack.compose("logs", "--no-color", "--timestamps", check=False)
    (LOG_DIR / "compose.log").write_text(logs.stdout + logs.stderr)
    ps = stack.compose("ps", "-a", check=False).stdout
    print(f"\n===== e2e failed: docker compose ps -a =====\n{ps}", file=sys.__stderr__)
    tail = "\n".join((logs.stdout + logs.stderr).splitlines()[-300:])
    print(
        f"===== last 300 log lines (all in {LOG_DIR}/compose.log) =====\n{tail}",
        file=sys.__stderr__,
    )
