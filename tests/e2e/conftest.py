"""The end-to-end suite: one compose stack, built and brought up once per session.

The stack comes up as a new user brings it up: in a fresh clone of this change with no
.env, `make up` alone (it writes .env with random secrets, seeds the stack's Git server
with the clone's HEAD, waits until deployed). The suite only passes, through the
environment, its own project name, free ports and the images it built once (compose.yaml
plus compose.standin.yaml where MinIO cannot be pulled). pytest-docker tears it down. On
failure the containers' logs are dumped; at the end `down -v` must leave nothing behind.
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

from tests.e2e.stack import PROJECT, Stack, read_env_file, stack_settings
from tests.support import REPO_ROOT, checkout_copy

LOG_DIR = REPO_ROOT / ".e2e-logs"


# The suite shares one stack: the user-facing behaviour first (it expects a fresh
# remote), then MLflow's registry (it expects only test_stack's default-params runs before
# it), then security checks, then the faults that stop and kill parts of it.
# (test_socket_proxy and test_image_secrets need no stack: their own containers.)
ORDER = (
    "test_required_settings",
    "test_socket_proxy",
    "test_image_secrets",
    "test_stack",
    "test_mlflow",
    "test_gitops",
    "test_security",
    "test_web",
    "test_faults",
)


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
def settings(prepared: dict[str, str]) -> dict[str, str]:
    """What the suite passes to `make up` through the environment (no secret)."""
    return stack_settings(prepared)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this change (its working tree, committed), with no .env."""
    _remove_leftovers()
    return checkout_copy(tmp_path_factory.mktemp("e2e") / "mltoy")


@pytest.fixture(scope="session")
def env_file(stack_dir: Path) -> Path:
    return stack_dir / ".env"  # written by `make up`


@pytest.fixture(scope="session")
def docker_compose_command(env_file: Path) -> str:
    return f"docker compose --env-file {env_file}"


@pytest.fixture(scope="session")
def docker_compose_file(stack_dir: Path, settings: dict[str, str]) -> list[str]:
    return [str(stack_dir / name) for name in settings["COMPOSE_FILE"].split(":")]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return []  # `make up` in the clone (fixture `stack`) brings it up


def _remove_leftovers() -> None:
    """Containers and volumes of an aborted earlier session (no .env to `down` it with)."""
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind, listing in (("container", ["ps", "-aq"]), ("volume", ["volume", "ls", "-q"])):
        found = subprocess.run(
            ["docker", *listing, "--filter", label], capture_output=True, text=True
        ).stdout.split()
        if found:
            remove = ["rm", "-f"] if kind == "container" else ["volume", "rm", "-f"]
            subprocess.run(["docker", *remove, *found], capture_output=True)


def make_up(stack_dir: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The README's command, in the clone, with the suite's settings in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COMPOSE_"))}
    return subprocess.run(
        ["make", "up"], cwd=stack_dir, env={**env, **settings}, capture_output=True, text=True
    )


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
    stack_dir: Path,
    settings: dict[str, str],
    env_file: Path,
    docker_compose_file: list[str],
    docker_services: object,
) -> Iterator[Stack]:
    up = make_up(stack_dir, settings)
    (stack_dir / "make-up.log").write_text(up.stdout + up.stderr)
    env = read_env_file(env_file) if env_file.exists() else dict(settings)
    api_url = f"http://127.0.0.1:{env['PREFECT_PORT']}/api"
    prefect = {PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: env.get("PREFECT_AUTH_STRING")}
    with temporary_settings(prefect), get_client(sync_client=True) as client:
        stack = Stack(env_file, env, docker_compose_file, client, stack_dir, up)
        if up.returncode != 0:
            dump_logs(stack)
            pytest.fail(f"make up failed ({up.returncode}):\n{(up.stdout + up.stderr)[-4000:]}")
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
