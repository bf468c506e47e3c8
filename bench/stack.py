"""The benchmark's own compose stack (project `mltoy-bench`), driven as the e2e suite does.

Its names never meet the e2e suite's (`mltoy-e2e`): own project, network, settings
volume, work pool and images (`mltoy/bundle:bench`, `mltoy/s3-standin:bench`,
`mltoy/postgres-standin:bench`, `mltoy/socket-proxy:bench`). It is brought up with
`docker compose --env-file F -p mltoy-bench -f compose.yaml -f compose.standin.yaml
up -d --wait --no-build` then `wait deploy`, and always taken down with `down -v`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from bench.procs import REPO_ROOT, free_port, run_timed
from bench.timeline import split

PROJECT = "mltoy-bench"
POOL = f"{PROJECT}-pool"
TUNED = REPO_ROOT / "bench" / "compose.tuned.yaml"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DEPLOYMENTS = {"a": "option-a-dvc-repro/option-a", "b": "option-b-stage-dag/option-b"}
IMAGES = {
    "MLTOY_IMAGE": "mltoy/bundle:bench",
    "STANDIN_IMAGE": "mltoy/s3-standin:bench",
    "POSTGRES_STANDIN_IMAGE": "mltoy/postgres-standin:bench",
    "PROXY_IMAGE": "mltoy/socket-proxy:bench",
}


def prepare_images(workdir: Path) -> dict[str, Any]:
    """scripts/e2e-prepare.sh with our own image names; returns its settings + time."""
    env = {**os.environ, **IMAGES}
    elapsed, result = run_timed(
        ["scripts/e2e-prepare.sh"],
        cwd=REPO_ROOT,
        env=env,
        log_file=workdir / "prepare.log",
        timeout=3600,
    )
    settings = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    settings["prepare_s"] = elapsed
    return settings


class EventWatcher:
    """Docker's create/start/die events of our pool's flow containers, by flow run id."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, float]] = {}
        self._process = subprocess.Popen(
            [
                "docker",
                "events",
                "--format",
                "{{json .}}",
                "--filter",
                "type=container",
                "--filter",
                f"label=io.prefect.work-pool-name={POOL}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            run_id = event.get("Actor", {}).get("Attributes", {}).get("io.prefect.flow-run-id")
            action = event.get("Action") or event.get("status")
            if run_id and action:
                when = int(event.get("timeNano", 0)) / 1e9 or float(event.get("time", 0))
                self.events.setdefault(run_id, {}).setdefault(action, when)

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


class Stack:
    def __init__(self, prepared: dict[str, Any], workdir: Path) -> None:
        self.workdir = workdir
        self.files = [*prepared["COMPOSE_FILES"].split(":")]
        self.tuned = False
        self.env = {
            "S3_ROOT_USER": f"bench{secrets.token_hex(4)}",
            "S3_ROOT_PASSWORD": secrets.token_urlsafe(24),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
            "PREFECT_AUTH_STRING": f"bench:{secrets.token_urlsafe(24)}",
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "BASE_IMAGE": prepared["BASE_IMAGE"],
            "MLTOY_IMAGE": prepared["MLTOY_IMAGE"],
            "PROXY_IMAGE": prepared["PROXY_IMAGE"],
            "S3_IMAGE": prepared["S3_IMAGE"],
            "POSTGRES_IMAGE": prepared["POSTGRES_IMAGE"],
            "PREFECT_PORT": str(free_port()),
            "MLTOY_NETWORK": f"{PROJECT}-net",
            "MLTOY_SETTINGS_VOLUME": f"{PROJECT}-remote-settings",
            "MLTOY_WORK_POOL": POOL,
        }
        self.env_file = workdir / "stack.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.env.items()))
        self.env_file.chmod(0o600)
        self.client: Any = None
        self.events: EventWatcher | None = None
        self._c = 0

    # ------------------------------------------------------------ compose

    def _argv(self, files: list[str], *args: str) -> list[str]:
        return [
            *("docker", "compose", "--env-file", str(self.env_file), "-p", PROJECT),
            *(arg for name in files for arg in ("-f", name)),
            *args,
        ]

    def compose(self, *args: str, timeout: float = 900) -> float:
        files = [*self.files, *([str(TUNED)] if self.tuned else [])]
        elapsed, _ = run_timed(
            self._argv(files, *args),
            cwd=REPO_ROOT,
            log_file=self.workdir / "compose.log",
            timeout=timeout,
        )
        return elapsed

    def up(self) -> dict[str, float]:
        """From nothing to healthy, then to deployed: seconds of each step."""
        healthy = self.compose("up", "-d", "--wait", "--no-build")
        deployed = self.compose("wait", "deploy")
        return {"up_healthy_s": healthy, "deploy_s": deployed}

    def down(self) -> None:
        """Flow containers of our pool first (they hold the network), then `down -v`."""
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=io.prefect.work-pool-name={POOL}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
        self.tuned = False
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10")

    def set_worker(self, tuned: bool) -> float:
        """Recreate the worker with (or without) bench/compose.tuned.yaml."""
        self.tuned = tuned
        return self.compose("up", "-d", "--wait", "--no-build", "worker")

    def dump_logs(self, path: Path) -> None:
        """Every container's log (after a failure), to `path`."""
        result = subprocess.run(
            self._argv(list(self.files), "logs", "--no-color", "--timestamps"),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        path.write_text(result.stdout + result.stderr)

    # ------------------------------------------------------------ Prefect

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PREFECT_PORT']}/api"

    @contextmanager
    def connected(self) -> Iterator[Stack]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        settings = {
            PREFECT_API_URL: self.api_url,
            PREFECT_API_AUTH_STRING: self.env["PREFECT_AUTH_STRING"],
        }
        with temporary_settings(settings), get_client(sync_client=True) as client:
            self.client = client
            self.events = EventWatcher()
            try:
                yield self
            finally:
                self.events.close()
                self.client = None

    def deployment_id(self, option: str) -> UUID:
        return self.client.read_deployment_by_name(DEPLOYMENTS[option]).id

    def quiet_schedules(self) -> None:
        """No hourly scheduled run may land in the middle of a measurement."""
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        ids = [self.deployment_id(option) for option in DEPLOYMENTS]
        for deployment_id in ids:
            for schedule in self.client.read_deployment_schedules(deployment_id):
                self.client.delete_deployment_schedule(deployment_id, schedule.id)
        scheduled = self.client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        )
        for run in scheduled:
            if run.auto_scheduled:
                self.client.delete_flow_run(run.id)

    def set_concurrency(self, limit: int) -> None:
        from prefect.client.schemas.actions import DeploymentUpdate

        for option in DEPLOYMENTS:
            self.client.update_deployment(
                self.deployment_id(option), DeploymentUpdate(concurrency_limit=limit)
            )

    def unique_c(self) -> float:
        """A train.C no run of this stack used: forces train + evaluate to run."""
        self._c += 1
        return round(0.3 + 0.0011 * self._c, 4)

    def trigger(self, option: str, parameters: dict[str, Any] | None = None) -> UUID:
        run = self.client.create_flow_run_from_deployment(
            self.deployment_id(option), parameters=parameters or {}
        )
        return run.id

    def wait_final(self, ids: list[UUID], timeout: float, partial: bool = False) -> dict[UUID, Any]:
        """{id: final flow run}; at the timeout, raise (or with `partial`, return the
        final ones: the caller counts the rest as failed)."""
        deadline = time.monotonic() + timeout
        done: dict[UUID, Any] = {}
        while len(done) < len(ids):
            for run_id in ids:
                if run_id in done:
                    continue
                run = self.client.read_flow_run(run_id)
                if run.state and run.state.type.value in FINAL:
                    done[run_id] = run
            if len(done) < len(ids):
                if time.monotonic() > deadline:
                    if partial:
                        return done
                    raise TimeoutError(
                        f"{len(ids) - len(done)} flow run(s) not final in {timeout:.0f}s"
                    )
                time.sleep(0.5)
        return done

    def run_and_split(
        self, option: str, parameters: dict[str, Any] | None = None, timeout: float = 600
    ) -> dict[str, Any]:
        run_id = self.trigger(option, parameters)
        run = self.wait_final([run_id], timeout)[run_id]
        return self.describe(run)

    def describe(self, run: Any) -> dict[str, Any]:
        """Final state, the latency phases and the stage outcomes of one flow run."""
        states = [
            (state.type.value, state.timestamp.timestamp())
            for state in self.client.read_flow_run_states(run.id)
        ]
        time.sleep(0.2)  # the events reader may be a moment behind
        container = self.events.events.get(str(run.id), {}) if self.events else {}
        return {
            "id": str(run.id),
            "state": run.state.type.value,
            "message": (run.state.message or "")[:300],
            "created": run.created.timestamp(),
            "phases": split(run.created.timestamp(), states, container),
            "container": container,
            "stages": self.stage_outcomes(run.id),
        }

    def stage_outcomes(self, run_id: UUID, wait: float = 20) -> dict[str, str]:
        """'stage NAME: OUTCOME' from the run's logs (the last lines may arrive a few
        seconds after the final state: the container flushes its logs as it exits)."""
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        deadline = time.monotonic() + wait
        while True:
            logs = self.client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
            )
            outcomes = {}
            for entry in logs:
                for stage in ("prepare", "train", "evaluate"):
                    prefix = f"stage {stage}: "
                    rest = entry.message[len(prefix) :]
                    if entry.message.startswith(prefix) and rest.isalpha():
                        outcomes[stage] = rest
            if len(outcomes) == 3 or time.monotonic() > deadline:
                return outcomes
            time.sleep(1)

    # ------------------------------------------------------------ the object store

    def wipe_remote(self) -> int:
        """A new remote: everything but the raw data (which deploy seeds) goes.

        The store is not published to the host: a one-off `remote-init` container on the
        stack's network does it with the admin key, as the e2e suite reads the bucket."""
        (out,) = yaml.safe_load((REPO_ROOT / "data/raw/iris.csv.dvc").read_text())["outs"]
        _, result = run_timed(
            [
                "docker",
                "compose",
                "--env-file",
                str(self.env_file),
                "-p",
                PROJECT,
                *(arg for name in self.files for arg in ("-f", name)),
                "run",
                "--rm",
                "--no-deps",
                "-T",
                "remote-init",
                "python",
                "-c",
                WIPE_SCRIPT,
                out["md5"],
            ],
            cwd=REPO_ROOT,
            log_file=self.workdir / "compose.log",
            timeout=300,
        )
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if not report["kept"]:
            raise RuntimeError("the remote lacks the raw data object deploy seeds")
        return int(report["deleted"])


WIPE_SCRIPT = """
import json, os, sys
from botocore.session import get_session
s3 = get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
    aws_access_key_id=os.environ["S3_ROOT_USER"],
    aws_secret_access_key=os.environ["S3_ROOT_PASSWORD"])
_, _, bucket, prefix = os.environ["DVC_REMOTE_URL"].split("/", 3)
md5 = sys.argv[1]
keep = f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
doomed = [key for key in keys if key != keep]
for start in range(0, len(doomed), 500):
    chunk = [{"Key": key} for key in doomed[start:start + 500]]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk})
print(json.dumps({"kept": keep in keys, "deleted": len(doomed)}))
"""
