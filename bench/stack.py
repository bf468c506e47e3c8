"""The benchmark's own compose stack: harness/stack.py's driver (the e2e suite's) under
names of its own, and what only the benchmark does to a stack.

Project MLTOY_BENCH_PROJECT (default `mltoy-bench`): its network, settings volume and
work pool derive from it; images tagged MLTOY_IMAGE_TAG (default `bench`). Like the
suite's, it is a fresh clone of this change brought up with `make up` (which writes its
.env with fresh secrets, seeds its Git server and waits until deployed), and always taken
down with `down -v`. It is the default stack, without compose.mlflow.yaml: the numbers
stay comparable with earlier reports (MLflow is an option of the stack).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from bench.timeline import PHASES, split
from harness import REPO_ROOT
from harness.stack import (
    DEPLOYMENTS,
    S3_ADMIN,
    ContainerEvents,
    Stack,
    prepare_images,
    stage_outcomes,
)

PROJECT = os.environ.get("MLTOY_BENCH_PROJECT", "mltoy-bench")
TAG = os.environ.get("MLTOY_IMAGE_TAG", "bench")
TUNED = "bench/compose.tuned.yaml"  # the worker polls every second instead of 5 s
MLFLOW = "compose.mlflow.yaml"
TASK_SUFFIX = re.compile(r"-[0-9a-f]{3}$")  # Prefect names task runs "<task>-<3 hex>"

# Everything but the raw data (which deploy seeds, and whose md5 is argv[1]) goes.
WIPE_SCRIPT = """
keep = f"{prefix}/files/md5/{sys.argv[1][:2]}/{sys.argv[1][2:]}"
present = keys()
doomed = [key for key in present if key != keep]
for start in range(0, len(doomed), 500):
    chunk = [{"Key": key} for key in doomed[start:start + 500]]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk})
print(json.dumps({"kept": keep in present, "deleted": len(doomed)}))
"""


def prepare(workdir: Path) -> dict[str, Any]:
    """scripts/e2e-prepare.sh with our image tag: its settings, and the seconds it took."""
    start = time.perf_counter()
    with (workdir / "prepare.log").open("w") as output:
        prepared: dict[str, Any] = prepare_images({**os.environ, "MLTOY_IMAGE_TAG": TAG}, output)
    return {**prepared, "prepare_s": time.perf_counter() - start}


@dataclass
class BenchStack(Stack):
    """The driver, plus Docker's container events beside the server's states while
    connected, no schedule firing mid-measurement, and params no run used before."""

    events: ContainerEvents | None = None
    _c: int = 0

    @classmethod
    def new(cls, prepared: dict[str, Any], workdir: Path) -> BenchStack:
        files = [name for name in prepared["COMPOSE_FILES"].split(":") if name != MLFLOW]
        stack = cls.clone(prepared, workdir / "mltoy", PROJECT, COMPOSE_FILE=":".join(files))
        stack.transcript = workdir / "compose.log"
        return stack

    def timed(self, *args: str) -> float:
        """Seconds a compose command took (it must succeed)."""
        start = time.perf_counter()
        self.compose(*args, timeout=900)
        return time.perf_counter() - start

    def up(self) -> dict[str, float]:
        """`make up` from nothing to deployed: seconds until the one-shot `deploy` started
        (it starts once the server, the Git server, the worker and remote-init are ready:
        the stack is healthy and seeded), and from then to `make up` returning."""
        start = time.time()
        result = self.make_up()
        end = time.time()
        if result.returncode != 0:
            raise RuntimeError(f"make up failed ({result.returncode}): {result.stderr[-2000:]}")
        deploy_started = self._started("deploy")
        return {"up_healthy_s": deploy_started - start, "deploy_s": end - deploy_started}

    def _started(self, service: str) -> float:
        """When Docker started the service's container (epoch seconds)."""
        import docker

        labels = [f"com.docker.compose.project={self.project}"]
        labels.append(f"com.docker.compose.service={service}")
        (container,) = docker.from_env().containers.list(all=True, filters={"label": labels})
        started = container.attrs["State"]["StartedAt"]  # RFC 3339, nanoseconds
        seconds, _, fraction = started.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{seconds}.{fraction[:6] or 0}+00:00").timestamp()

    def set_worker(self, tuned: bool) -> float:
        """Recreate the worker with (or without) bench/compose.tuned.yaml."""
        self.compose_files = [name for name in self.compose_files if name != TUNED]
        self.compose_files += [TUNED] if tuned else []
        return self.timed("up", "-d", "--wait", "--no-build", "worker")

    def down(self) -> None:
        super().down()
        self.compose_files = [name for name in self.compose_files if name != TUNED]

    @contextmanager
    def connected(self) -> Iterator[Any]:
        with super().connected() as client:
            self.events = ContainerEvents(self.env["MLTOY_WORK_POOL"])
            try:
                yield client
            finally:
                self.events.close()

    def set_concurrency(self, limit: int) -> None:
        for name in DEPLOYMENTS.values():
            self.set_limit(name, limit)

    def unique_c(self) -> float:
        """A train.C no run of this stack used: forces train + evaluate to run."""
        self._c += 1
        return round(0.3 + 0.0011 * self._c, 4)

    def run_and_split(self, option: str, timeout: float = 600) -> dict[str, Any]:
        """Trigger a run, wait for its final state, and describe it."""
        run_id = self.trigger(option, parameters={})
        return self.describe(self.wait_final(run_id, timeout, every=0.5))

    def describe(self, run: Any) -> dict[str, Any]:
        """Final state, the latency phases and the stage outcomes of one flow run."""
        states = [
            (state.type.value, state.timestamp.timestamp())
            for state in self.api.read_flow_run_states(run.id)
        ]
        time.sleep(0.2)  # the events reader may be a moment behind
        container = self.events.events.get(str(run.id), {}) if self.events else {}
        try:  # the last lines arrive a few seconds after the final state, if at all
            logs = self.logs_with(run.id, "stage evaluate: ", timeout=20)
        except TimeoutError:
            logs = self.logs(run.id)
        return {
            "id": str(run.id),
            "state": run.state.type.value,
            "message": (run.state.message or "")[:300],
            "created": run.created.timestamp(),
            "phases": split(run.created.timestamp(), states, container),
            "container": container,
            "stages": stage_outcomes(logs),
            "tasks": self.task_times(run.id),
        }

    def task_times(self, run_id: UUID) -> list[dict[str, Any]]:
        """The run's task runs, in start order: name (without Prefect's random suffix),
        seconds, final state. What the flow-run phase is spent on, and what it is not."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        tasks = self.api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        started = sorted(
            (task for task in tasks if task.start_time), key=lambda task: task.start_time
        )
        return [
            {
                "name": TASK_SUFFIX.sub("", task.name),
                "seconds": task.total_run_time.total_seconds(),
                "state": task.state.name if task.state else None,
            }
            for task in started
        ]

    def unfinished(self, run_id: UUID, waited: float) -> dict[str, Any]:
        """A run not final when the batch gave up on it: counted as a failure."""
        run = self.api.read_flow_run(run_id)
        return {
            "id": str(run_id),
            "state": f"NOT FINAL ({run.state.name if run.state else '?'})",
            "message": f"not final after {waited:.0f} s",
            "created": run.created.timestamp(),
            "phases": dict.fromkeys((*PHASES, "total")),
            "container": {},
            "stages": {},
        }

    def wipe_remote(self) -> int:
        """A new remote: everything but the raw data (which deploy seeds) goes."""
        (out,) = yaml.safe_load((REPO_ROOT / "data/raw/iris.csv.dvc").read_text())["outs"]
        report = self.in_network(S3_ADMIN + WIPE_SCRIPT, out["md5"])
        if not report["kept"]:
            raise RuntimeError("the remote lacks the raw data object deploy seeds")
        return int(report["deleted"])
