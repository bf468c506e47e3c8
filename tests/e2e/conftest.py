"""The end-to-end suite: one compose stack, built and brought up once per session.

The stack comes up as a new user brings it up: in a fresh clone of this change with no
.env, `make up` alone (it writes .env with random secrets, seeds the stack's Git server
with the clone's HEAD, waits until deployed). The suite only passes, through the
environment, its own project name, free ports and the images it built once (compose.yaml,
compose.standin.yaml where MinIO cannot be pulled, compose.mlflow.yaml). The driver is
harness/stack.py, the benchmark's too. pytest-docker tears it down. On failure the
containers' logs are dumped; at the end `down -v` must leave nothing behind.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from harness import REPO_ROOT
from harness.stack import PROJECT, ImagePreparation, Stack, prepare_images, remove_leftovers
from tests.e2e.stack import TEST_LIMITS
from tests.e2e.webhook import WebhookReceiver, new_token, notify_url

LOG_DIR = REPO_ROOT / ".e2e-logs"


# The suite shares one stack: the user-facing behaviour first (it expects a fresh
# remote), then MLflow's registry (it expects only test_stack's default-params runs before
# it), GitOps, failure notifications, parameter sweeps, the UI in a browser (before
# test_web trips the gateway's failed-login limit), then security checks (which search the
# logs of every run so far), then the faults that stop and kill parts of it, and last the
# GCS remote (it switches the stack to gs:// and back: whatever it leaves, nothing follows).
# (test_socket_proxy, test_image_secrets and test_images need no stack: their own containers;
# test_default_stack and test_scale_out bring up and take down a stack of their own before
# the suite's.)
ORDER = (
    "test_required_settings",
    "test_socket_proxy",
    "test_image_secrets",
    "test_images",
    "test_default_stack",
    "test_scale_out",
    "test_stack",
    "test_mlflow",
    "test_gitops",
    "test_notifications",
    "test_sweep",
    "test_ui",
    "test_security",
    "test_web",
    "test_faults",
    "test_gcs_remote",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return ORDER.index(item.path.stem) if item.path.stem in ORDER else len(ORDER)

    e2e = [item for item in items if "tests/e2e/" in str(item.path)]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    others = [item for item in items if item not in e2e]
    items[:] = others + sorted(e2e, key=rank)


# The images are built while the unit and flow tests run (they come first, see above).
PREPARATION: list[ImagePreparation] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("e2e") for item in session.items):
        PREPARATION.append(ImagePreparation(LOG_DIR / "e2e-prepare.log"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    for preparation in PREPARATION:
        preparation.stop()


@pytest.fixture(scope="session")
def prepared() -> dict[str, str]:
    """Docker engine, base image and our images: built once per session."""
    try:
        return PREPARATION[0].settings() if PREPARATION else prepare_images()
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def new_stack(prepared: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """A fresh clone of this change (its working tree, committed), with no .env, and the
    settings the suite passes to `make up`: no secret but the failure notifications' URL
    (the receiver below), whose token the secrets tests look for; `stack` brings it up."""
    # Of an aborted earlier session (no .env to `down` it with).
    WebhookReceiver.remove(PROJECT)
    remove_leftovers(PROJECT)
    return Stack.clone(
        prepared,
        tmp_path_factory.mktemp("e2e") / "mltoy",
        **TEST_LIMITS,
        MLTOY_NOTIFY_URL=notify_url(PROJECT, new_token()),
    )


@pytest.fixture(scope="session")
def docker_compose_command(new_stack: Stack) -> str:
    return f"docker compose --env-file {new_stack.env_file}"


@pytest.fixture(scope="session")
def docker_compose_file(new_stack: Stack) -> list[str]:
    return [str(new_stack.project_dir / name) for name in new_stack.compose_files]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return []  # `make up` in the clone (fixture `stack`) brings it up


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v --remove-orphans"]


@pytest.fixture(scope="session")
def nothing_left_behind(new_stack: Stack) -> Iterator[None]:
    """Set up before the stack, so its check runs after the stack's `down -v`."""
    yield
    leftovers = new_stack.leftovers()
    assert not leftovers, f"`down -v` left behind: {leftovers}"


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest,
    nothing_left_behind: None,
    new_stack: Stack,
    docker_services: object,
) -> Iterator[Stack]:
    up = new_stack.make_up()
    if up.returncode != 0:
        dump_logs(new_stack)
        pytest.fail(f"make up failed ({up.returncode}):\n{(up.stdout + up.stderr)[-4000:]}")
    # Every run of the session may notify: the receiver is there from the start.
    env = new_stack.env
    RECEIVER[PROJECT] = WebhookReceiver.start(
        PROJECT, env["MLTOY_NETWORK"], env["MLTOY_IMAGE"], env["MLTOY_NOTIFY_URL"]
    )
    try:
        with new_stack.connected():
            yield new_stack
        if request.session.testsfailed:
            dump_logs(new_stack)
    finally:
        RECEIVER.pop(PROJECT).stop()  # off the network before `down -v` removes it


RECEIVER: dict[str, WebhookReceiver] = {}


@pytest.fixture(scope="session")
def webhook(stack: Stack) -> WebhookReceiver:
    """Where the stack's failure notifications arrive (tests/e2e/webhook.py)."""
    return RECEIVER[PROJECT]


def dump_logs(stack: Stack) -> None:
    """Every container's log, to .e2e-logs/ and (tail) to the terminal."""
    LOG_DIR.mkdir(exist_ok=True)
    logs = stack.dump_logs(LOG_DIR / "compose.log")
    ps = stack.compose("ps", "-a", check=False).stdout
    print(f"\n===== e2e failed: docker compose ps -a =====\n{ps}", file=sys.__stderr__)
    tail = "\n".join(logs.splitlines()[-300:])
    print(
        f"===== last 300 log lines (all in {LOG_DIR}/compose.log) =====\n{tail}",
        file=sys.__stderr__,
    )
