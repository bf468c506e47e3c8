"""Workers on two Docker engines through the stack's registry (docs/scale-out.md).

Its own compose project with compose.registry.yaml, the images named in the registry;
brought up, used, taken down before the suite's stack comes up (tests/e2e/conftest.py:
ORDER). As a user with a second host: `make up`, `make registry-push`, then
`make worker-join WORKER_HOST=...` against a second engine that has never seen an image
(harness/second_engine.py). Each worker takes at most four runs at a time
(MLTOY_WORKER_LIMIT=4): a burst of 8 needs both workers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import docker
import pytest
from prefect.client.schemas.actions import DeploymentUpdate

from harness.second_engine import SecondEngine, remove_second_engines
from harness.stack import free_port, remove_leftovers
from tests.e2e.stack import PROJECT, TEST_LIMITS, Stack, poll

SCALE_PROJECT = f"{PROJECT}-scale"
TRIAL = "option-a-dvc-repro/option-a-trial"
BURST = 8
WORKER_LIMIT = 4


def registry_name(image: str, registry: str) -> str:
    """mltoy/bundle:0.1.0 -> 127.0.0.1:PORT/mltoy/bundle:0.1.0"""
    return f"{registry}/{image}"


@dataclass
class ScaleOut:
    stack: Stack
    second: SecondEngine
    images_before_join: list[Any]  # what the second engine had before `make worker-join`


def make(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A make target in the stack's clone, with its settings (as `make up` got them),
    and the suite's venv (as tests/e2e/test_gitops.py's `make remote-config`)."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "COMPOSE_", "MLTOY_", "DOCKER_"))
    }
    return subprocess.run(
        ["make", *args, f"VENV={Path(sys.executable).parent.parent}"],
        cwd=stack.project_dir,
        env={**inherited, **stack.settings, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


class ContainerStarts:
    """The flow runs of `pool` whose container an engine starts, as it starts them: a
    live `docker events` stream (the engine keeps too few past events to ask afterwards:
    every healthcheck is an event too)."""

    def __init__(self, client: Any, pool: str) -> None:
        label = f"io.prefect.work-pool-name={pool}"
        filters = {"type": "container", "event": "start", "label": label}
        self.stream = client.events(filters=filters, decode=True)
        self.runs: list[UUID] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with suppress(Exception):  # the stream closed
            for event in self.stream:
                self.runs.append(UUID(event["Actor"]["Attributes"]["io.prefect.flow-run-id"]))

    def close(self) -> None:
        self.stream.close()


@pytest.fixture(scope="module")
def scale_out(
    prepared: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScaleOut]:
    remove_second_engines(SCALE_PROJECT)
    remove_leftovers(SCALE_PROJECT)
    port = free_port()
    registry = f"127.0.0.1:{port}"
    images = {
        "MLTOY_IMAGE": registry_name(prepared["MLTOY_IMAGE"], registry),
        "PROXY_IMAGE": registry_name(prepared["PROXY_IMAGE"], registry),
    }
    engine = docker.from_env()
    for name, image in images.items():  # as `make up` would build them, under these names
        engine.images.get(prepared[name]).tag(image)
    files = [name for name in prepared["COMPOSE_FILES"].split(":") if "mlflow" not in name]
    stack = Stack.clone(
        prepared,
        tmp_path_factory.mktemp("e2e-scale") / "mltoy",
        project=SCALE_PROJECT,
        COMPOSE_FILE=":".join([*files, "compose.registry.yaml"]),
        REGISTRY_PORT=str(port),
        REGISTRY_IMAGE=prepared["REGISTRY_IMAGE"],
        MLTOY_WORKER_LIMIT=str(WORKER_LIMIT),
        **images,
        **{
            **TEST_LIMITS,
            # Shipped: 8 starts at once on 2 cores may take longer than the suite's 90 s.
            "MLTOY_PENDING_SECONDS": "600",
        },
    )
    second: SecondEngine | None = None
    try:
        up = stack.make_up()
        if up.returncode != 0:
            logs = stack.dump_logs(stack.project_dir / "compose.log")[-3000:]
            pytest.fail(
                f"make up failed ({up.returncode}):\n{(up.stdout + up.stderr)[-3000:]}\n{logs}"
            )
        pushed = make(stack, "registry-push", MLTOY_BUILD="0")
        assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-3000:]
        registry_container = stack.compose("ps", "-q", "registry").stdout.strip()
        second = SecondEngine.start(
            prepared["ENGINE_STANDIN_IMAGE"],
            registry_container,
            stack.project_dir / "engine2",
            label=SCALE_PROJECT,
        )
        before = second.client().images.list()
        joined = make(stack, "worker-join", WORKER_HOST=second.host)
        assert joined.returncode == 0, joined.stdout[-2000:] + joined.stderr[-3000:]
        with stack.connected():
            yield ScaleOut(stack, second, before)
    except BaseException:
        stack.dump_logs(stack.project_dir / "compose.log")
        if second:
            (stack.project_dir / "engine2.log").write_text(second.logs())
            for container in second.client().containers.list(all=True):
                (stack.project_dir / f"engine2-{container.name}.log").write_bytes(
                    container.logs(tail=300)
                )
        raise
    finally:
        if second:
            second.stop()
        stack.down()
        for image in images.values():
            subprocess.run(["docker", "rmi", image], capture_output=True)
    assert not stack.leftovers(), stack.leftovers()


def online_workers(stack: Stack) -> list[Any]:
    workers = stack.api.read_workers_for_work_pool(work_pool_name=stack.env["MLTOY_WORK_POOL"])
    return [worker for worker in workers if str(worker.status).upper().endswith("ONLINE")]


def test_the_second_engine_pulled_its_images_from_the_registry(scale_out: ScaleOut):
    scale_stack, second = scale_out.stack, scale_out.second
    assert scale_out.images_before_join == []
    tags = {tag for image in second.client().images.list() for tag in image.tags}
    assert {scale_stack.env["MLTOY_IMAGE"], scale_stack.env["PROXY_IMAGE"]} <= tags, tags
    # The registry served them, to an authenticated client (its access log).
    registry_log = scale_stack.compose("logs", "--no-color", "registry").stdout
    repository = scale_stack.env["MLTOY_IMAGE"].split("/", 1)[1].rsplit(":", 1)[0]
    for what in ("manifests", "blobs"):  # only a pull GETs them: a push PUTs, HEADs
        served = rf'"GET /v2/{re.escape(repository)}/{what}/[^ ]+ HTTP/1.1" 200 '
        assert re.search(served, registry_log), registry_log[-3000:]
    # ... and refuses anyone else.
    anonymous = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"http://127.0.0.1:{scale_stack.env['REGISTRY_PORT']}/v2/",
        ],
        capture_output=True,
        text=True,
    )
    assert anonymous.stdout == "401"
    poll(lambda: len(online_workers(scale_stack)) == 2 or None, 60, "two online workers")


def test_a_burst_spreads_over_both_engines_and_survives_a_killed_worker(scale_out: ScaleOut):
    """8 runs at once; once the second engine's worker has its four in flight, it is
    killed: they still end (a flow container reports to the API itself), the other
    worker's too: every run Completes."""
    scale_stack, second = scale_out.stack, scale_out.second
    pool = scale_stack.env["MLTOY_WORK_POOL"]
    deployment = scale_stack.api.read_deployment_by_name(TRIAL)
    # Its own limit (2) would leave one worker idle: all of the burst at once.
    scale_stack.api.update_deployment(deployment.id, DeploymentUpdate(concurrency_limit=BURST))
    there = second.client()
    here_starts, there_starts = (
        ContainerStarts(docker.from_env(), pool),
        ContainerStarts(there, pool),
    )
    try:
        ids = [
            scale_stack.api.create_flow_run_from_deployment(deployment.id).id for _ in range(BURST)
        ]
        # The second worker's share started (its limit): all of them in flight, then kill.
        poll(
            lambda: len(there_starts.runs) >= WORKER_LIMIT or None,
            300,
            f"{WORKER_LIMIT} runs on the second engine",
            0.5,
        )
        workers = there.containers.list(filters={"label": "com.docker.compose.service=worker"})
        assert len(workers) == 1, workers
        in_flight = list(there_starts.runs)
        killed_at = time.time()
        workers[0].kill()
        finals = scale_stack.wait_finals(ids, timeout=600)
    finally:
        here_starts.close()
        there_starts.close()
    here, ran_there = here_starts.runs, there_starts.runs
    states = {run_id: run.state.name for run_id, run in finals.items()}
    (Path(scale_stack.project_dir) / "burst.txt").write_text(f"{states}\n{here}\n{ran_there}\n")
    assert len(finals) == BURST, f"not final: {set(ids) - set(finals)}; {states}"
    assert all(state == "Completed" for state in states.values()), states
    # Each run in one container, on one engine; both engines ran some.
    assert sorted(here + ran_there) == sorted(ids), (here, ran_there)
    assert here and ran_there, (here, ran_there)
    # The killed worker's runs were in flight: they ended after the kill.
    ended = {run_id: finals[run_id].state.timestamp.timestamp() for run_id in in_flight}
    assert all(when > killed_at for when in ended.values()), (ended, killed_at)
    print(f"burst of {BURST}: {len(here)} on this engine, {len(ran_there)} on the second")
