"""The compose stack driven from the host, as a user would: one driver for the end-to-end
suite (tests/e2e) and the benchmark (bench/).

- `prepare_images`, `ImagePreparation`: scripts/e2e-prepare.sh (Docker engine, base
  image, our images), waited for or in the background;
- `stack_settings`: what the driver passes to `make up` through the environment: its own
  names, free ports and the images built once (no secret: `make up` writes the clone's
  .env with random ones, seeds the stack's Git server with the clone's HEAD and waits
  until deployed);
- `Stack`: a fresh clone of this change (`Stack.clone`) brought up with the README's
  `make up` (`Stack.make_up`), then `docker compose` with the .env it wrote, the Prefect
  API (trigger a deployment, wait for a final state with Prefect's own
  `State.is_final()`), a run's logs and artifacts, the bucket seen from inside the
  stack's network, and the clean-up.

Names derive from the compose project, which comes from the environment
(MLTOY_E2E_PROJECT; the benchmark has its own), so several checkouts can each run a
stack on one Docker engine.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient

from deploy.polling import poll
from harness import REPO_ROOT
from harness.workspace import checkout_copy

T = TypeVar("T")

PROJECT = os.environ.get("MLTOY_E2E_PROJECT", "mltoy-e2e")
DEPLOYMENTS = {"a": "option-a-dvc-repro/option-a", "b": "option-b-stage-dag/option-b"}

# A preamble for Python run inside the stack (`Stack.in_network`): `s3`, a client with
# the store's admin key; `bucket` and `prefix` of the DVC remote; `keys()` in the bucket.
S3_ADMIN = """
import hashlib, json, os, sys
from botocore.session import get_session
s3 = get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
    aws_access_key_id=os.environ["S3_ROOT_USER"],
    aws_secret_access_key=os.environ["S3_ROOT_PASSWORD"])
_, _, bucket, prefix = os.environ["DVC_REMOTE_URL"].split("/", 3)
def keys():
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
"""
# Checks each DVC object against its name (dvc/files/md5/ab/cdef.. holds bytes whose
# MD5 is abcdef..): a partial or corrupt upload shows up as False.
BUCKET_SCRIPT = """
def sound(key):
    if "/files/md5/" not in key:
        return True
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return hashlib.md5(body).hexdigest() == "".join(key.split("/")[-2:])
print(json.dumps({key: sound(key) for key in keys()}))
"""
# Both flows log (and `flows.cli` prints) one 'stage NAME: OUTCOME' line per stage.
STAGE_LINE = re.compile(r"stage (?P<stage>[^:\s]+): (?P<outcome>[a-z]+)")  # foreach: train@1
STAGES = ("prepare", "train", "evaluate")  # dvc.yaml's, in order


def free_port() -> int:
    """A local TCP port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stage_outcomes(lines: Iterable[str]) -> dict[str, str]:
    """{stage: ran|skipped|restored|...} from a run's log lines or `flows.cli` output."""
    found = (STAGE_LINE.fullmatch(line.strip()) for line in lines)
    return {match["stage"]: match["outcome"] for match in found if match}


PREPARE = ["scripts/e2e-prepare.sh"]


def _prepared(stdout: str) -> dict[str, str]:
    """The settings scripts/e2e-prepare.sh prints (BASE_IMAGE, MLTOY_IMAGE, ...)."""
    return dict(line.split("=", 1) for line in stdout.split() if "=" in line)


def prepare_images(env: dict[str, str] | None = None, stderr: IO[str] | None = None) -> dict:
    """Run scripts/e2e-prepare.sh (engine, base image, our images: built once) and
    return the settings it prints (BASE_IMAGE, MLTOY_IMAGE, ..., COMPOSE_FILES)."""
    result = subprocess.run(
        PREPARE, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/e2e-prepare.sh failed ({result.returncode}); see its output")
    return _prepared(result.stdout)


class ImagePreparation:
    """scripts/e2e-prepare.sh started in the background, so that installing the engine
    and building the images (minutes on a new machine) overlaps the tests that need
    neither; `settings()` waits for it. Its progress goes to `log`."""

    def __init__(self, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._stderr = log.open("w")
        self._process = subprocess.Popen(
            PREPARE, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self._settings: dict[str, str] | None = None

    def settings(self) -> dict[str, str]:
        if self._settings is None:
            stdout, _ = self._process.communicate()
            self._stderr.close()
            if self._process.returncode != 0:
                tail = "\n".join(self.log.read_text().splitlines()[-40:])
                raise RuntimeError(
                    f"scripts/e2e-prepare.sh failed ({self._process.returncode});"
                    f" the end of {self.log}:\n{tail}"
                )
            self._settings = _prepared(stdout)
        return self._settings

    def stop(self) -> None:
        """At the session's end: a build nobody waited for (the session stopped early)."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=60)
        self._stderr.close()


def stack_settings(prepared: dict[str, str], project: str = PROJECT) -> dict[str, str]:
    """The driver's own names, free ports and prebuilt images; `make up` (make env) writes
    them into the clone's .env next to the secrets it generates. MLTOY_BUILD=0: make up
    uses the images e2e-prepare built (same Dockerfiles) instead of building them again."""
    return {
        "MLTOY_BUILD": "0",
        "COMPOSE_PROJECT_NAME": project,
        "BASE_IMAGE": prepared["BASE_IMAGE"],
        "MLTOY_IMAGE": prepared["MLTOY_IMAGE"],
        "PROXY_IMAGE": prepared["PROXY_IMAGE"],
        "GIT_IMAGE": prepared["GIT_IMAGE"],
        "MLFLOW_IMAGE": prepared["MLFLOW_IMAGE"],
        "S3_IMAGE": prepared["S3_IMAGE"],
        "POSTGRES_IMAGE": prepared["POSTGRES_IMAGE"],
        "COMPOSE_FILE": prepared["COMPOSE_FILES"],
        "PREFECT_PORT": str(free_port()),
        "GIT_PORT": str(free_port()),
        "S3_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()),
        "MLTOY_NETWORK": f"{project}-net",
        "MLTOY_SETTINGS_VOLUME": f"{project}-remote-settings",
        "MLTOY_WORK_POOL": f"{project}-pool",
    }


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env (comments and blank lines skipped)."""
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if line and line[0] != "#"
    )


def _remove(container: Any) -> None:
    """Remove a container, running or not, with its anonymous volumes (a flow container's
    scratch /tmp); one that is already gone or going (a flow container the engine
    auto-removes as it exits, between listing and removing: 404 or 409) is fine."""
    import docker

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if error.status_code != 409 or "already in progress" not in str(error):
            raise


def remove_leftovers(project: str = PROJECT) -> None:
    """Containers, volumes and networks of an aborted earlier stack of `project` (its
    clone and .env are gone, so `down` cannot be run): a new stack starts from nothing."""
    import docker

    engine = docker.from_env()
    label = {"label": f"com.docker.compose.project={project}"}
    for container in engine.containers.list(all=True, filters=label):
        _remove(container)
    for volume in engine.volumes.list(filters=label):
        # e.g. a flow container of the aborted stack (the worker's, no compose label)
        for user in engine.containers.list(
            all=True, filters={"volume": volume.name}, ignore_removed=True
        ):
            _remove(user)
        volume.remove(force=True)
    for network in engine.networks.list(filters=label):
        network.remove()


def containers_labelled(label: str) -> list[str]:
    """Names of the engine's containers, running or not, with this label (`key=value`)."""
    import docker

    found = docker.from_env().containers.list(all=True, filters={"label": label})
    return [container.name for container in found]


class ContainerEvents:
    """Docker's events for the flow containers of `pool` on an engine (this machine's
    unless `client` says another), as they happen: {flow run id: {action: first time}},
    e.g. "create", "start", "die". A live stream: the engine keeps too few past events to
    ask afterwards (every healthcheck is an event too)."""

    def __init__(self, pool: str, client: Any = None) -> None:
        import docker

        self.events: dict[str, dict[str, float]] = {}
        self._stream = (client or docker.from_env()).events(
            decode=True,
            filters={"type": "container", "label": f"io.prefect.work-pool-name={pool}"},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                run_id = event.get("Actor", {}).get("Attributes", {}).get("io.prefect.flow-run-id")
                if run_id and event.get("Action"):
                    when = int(event["timeNano"]) / 1e9
                    self.events.setdefault(run_id, {}).setdefault(event["Action"], when)
        except Exception:  # the stream was closed
            return

    def started(self) -> list[UUID]:
        """The runs whose container this engine started, in the order it started them."""
        starts = [
            (actions["start"], run_id)
            for run_id, actions in list(self.events.items())
            if "start" in actions
        ]
        return [UUID(run_id) for _, run_id in sorted(starts)]

    def close(self) -> None:
        self._stream.close()


@dataclass
class Stack:
    project_dir: Path  # the clone the stack is brought up from (`make up` runs there)
    settings: dict[str, str]  # what `make up` gets through the environment (no secret)
    client: SyncPrefectClient | None = None
    project: str = PROJECT
    transcript: Path | None = None  # if set, every compose call and its output go there
    up_output: subprocess.CompletedProcess[str] | None = None  # what `make up` printed
    runs: dict[str, list[UUID]] = field(default_factory=dict)
    compose_files: list[str] = field(init=False)  # -f of every compose call

    def __post_init__(self) -> None:
        self.compose_files = self.settings["COMPOSE_FILE"].split(":")

    @classmethod
    def clone(
        cls, prepared: dict[str, str], directory: Path, project: str = PROJECT, **overrides: str
    ) -> Stack:
        """A stack of a fresh clone of this change in `directory` (no .env yet, not
        started); `overrides` replace settings (e.g. shorter limits for the tests)."""
        settings = {**stack_settings(prepared, project), **overrides}
        return cls(checkout_copy(directory), settings, project=project)

    @property
    def env_file(self) -> Path:
        return self.project_dir / ".env"  # written by `make up`

    @property
    def env(self) -> dict[str, str]:
        """The stack's settings: the .env `make up` wrote (secrets included), or before
        that, what it will be given."""
        return read_env_file(self.env_file) if self.env_file.exists() else dict(self.settings)

    def make_up(self, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        """The README's command, in the clone, with the settings in the environment (none
        of the caller's Prefect or Compose settings leak in). Kept in `up_output`."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PREFECT_", "COMPOSE_", "MLTOY_"))
        }
        self.up_output = subprocess.run(
            ["make", "up"],
            cwd=self.project_dir,
            env={**inherited, **self.settings},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        (self.project_dir / "make-up.log").write_text(self.up_output.stdout + self.up_output.stderr)
        return self.up_output

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PREFECT_PORT']}/api"

    # ------------------------------------------------------------ compose

    def compose(
        self, *args: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            *("docker", "compose", "--env-file", str(self.env_file), "-p", self.project),
            *(arg for name in self.compose_files for arg in ("-f", str(name))),
            *args,
        ]
        result = subprocess.run(
            argv, cwd=self.project_dir, capture_output=True, text=True, timeout=timeout
        )
        if self.transcript:
            with self.transcript.open("a") as out:
                out.write(f"$ {' '.join(argv)}  (rc {result.returncode})\n")
                out.write(result.stdout + result.stderr + "\n")
        if check:
            result.check_returncode()
        return result

    def flow_containers(self) -> list[Any]:
        """The containers the worker started for our pool's runs (running or not); one the
        engine auto-removes between listing and inspecting is left out."""
        import docker

        pool = f"io.prefect.work-pool-name={self.env['MLTOY_WORK_POOL']}"
        return docker.from_env().containers.list(
            all=True, filters={"label": pool}, ignore_removed=True
        )

    def down(self) -> None:
        """Flow containers first (they hold the network), then `down -v` (with no .env
        yet, `make up` never ran: only what an aborted earlier stack left, by label)."""
        for container in self.flow_containers():
            _remove(container)
        if not self.env_file.exists():
            remove_leftovers(self.project)
            return
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=300)

    def leftovers(self) -> list[str]:
        """What of this stack is still on the engine: nothing after `down`."""
        import docker

        engine = docker.from_env()
        label = {"label": f"com.docker.compose.project={self.project}"}
        return [
            *(f"container {c.name}" for c in engine.containers.list(all=True, filters=label)),
            *(f"volume {v.name}" for v in engine.volumes.list(filters=label)),
            *(f"network {n.name}" for n in engine.networks.list(filters=label)),
            *(f"flow container {c.name}" for c in self.flow_containers()),
        ]

    def dump_logs(self, path: Path) -> str:
        """Every container's log to `path`; returns it."""
        result = self.compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        path.write_text(result.stdout + result.stderr)
        return result.stdout + result.stderr

    def in_network(self, script: str, *args: str) -> Any:
        """Run Python in a one-off container on the stack's network, with the remote's
        admin settings (the object store is not published; S3_ADMIN makes its client);
        return its JSON output (the last line)."""
        argv = ("run", "--rm", "--no-deps", "-T", "remote-init", "python", "-c", script, *args)
        return json.loads(self.compose(*argv, timeout=300).stdout.strip().splitlines()[-1])

    def bucket(self) -> dict[str, bool]:
        """{key: content matches its md5 name} for DVC objects; True for other keys."""
        return self.in_network(S3_ADMIN + BUCKET_SCRIPT)

    # ------------------------------------------------------------ Prefect

    @contextmanager
    def connected(self) -> Iterator[SyncPrefectClient]:
        """A Prefect client of this stack's API (as `self.client` meanwhile)."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        settings = {
            PREFECT_API_URL: self.api_url,
            PREFECT_API_AUTH_STRING: self.env["PREFECT_AUTH_STRING"],
        }
        with temporary_settings(settings), get_client(sync_client=True) as client:
            self.client = client
            try:
                yield client
            finally:
                self.client = None

    @property
    def api(self) -> SyncPrefectClient:
        assert self.client is not None, "not connected: use `with stack.connected():`"
        return self.client

    def deployment_id(self, option: str) -> UUID:
        return self.api.read_deployment_by_name(DEPLOYMENTS[option]).id

    def set_limit(self, deployment: str, limit: int) -> None:
        """The concurrency limit of a deployment, by its `flow/deployment` name."""
        from prefect.client.schemas.actions import DeploymentUpdate

        deployment_id = self.api.read_deployment_by_name(deployment).id
        self.api.update_deployment(deployment_id, DeploymentUpdate(concurrency_limit=limit))

    def quiet_schedules(self) -> None:
        """No scheduled run may land in the middle of a measurement: a paused deployment's
        schedules create no runs, and pausing deletes those they had created (the server
        does); runs triggered by hand still go through."""
        for option in DEPLOYMENTS:
            self.api.pause_deployment(self.deployment_id(option))

    def online_workers(self) -> list[Any]:
        """The workers of the stack's pool that the server counts as online."""
        workers = self.api.read_workers_for_work_pool(work_pool_name=self.env["MLTOY_WORK_POOL"])
        return [worker for worker in workers if str(worker.status).upper().endswith("ONLINE")]

    def trigger(self, option: str, **kwargs: Any) -> UUID:
        """Create a run as the UI's Quick run does (kwargs: parameters, state)."""
        flow_run = self.api.create_flow_run_from_deployment(self.deployment_id(option), **kwargs)
        self.runs.setdefault(option, []).append(flow_run.id)
        return flow_run.id

    def run_deployment(self, option: str, timeout: float = 300, **kwargs: Any) -> Any:
        """Trigger a run and wait for its final state."""
        return self.wait_final(self.trigger(option, **kwargs), timeout)

    def completed_run(self, option: str) -> UUID:
        """The first Completed run of `option` made through this object; made now when
        there is none (a test run alone that needs what a run leaves behind: its outputs
        in the remote, a history, a baseline)."""
        for run_id in self.runs.get(option, []):
            state = self.api.read_flow_run(run_id).state
            if state and state.is_completed():
                return run_id
        run = self.run_deployment(option)
        assert run.state.is_completed(), run.state.message
        return run.id

    def wait_state(self, flow_run_id: UUID, names: set[str], timeout: float = 180) -> Any:
        """Until the run's state is named one of `names` (e.g. {"Running"})."""

        def reached() -> Any:
            run = self.api.read_flow_run(flow_run_id)
            return run if run.state and run.state.name in names else None

        return poll(reached, timeout, f"flow run {flow_run_id} to reach {sorted(names)}", 1)

    def wait_final(self, flow_run_id: UUID, timeout: float = 300, every: float = 0.5) -> Any:
        """The flow run once its state is final (Completed, Failed, Crashed, Cancelled)."""

        def final() -> Any:
            run = self.api.read_flow_run(flow_run_id)
            return run if run.state and run.state.is_final() else None

        return poll(final, timeout, f"flow run {flow_run_id} to finish", every)

    def wait_finals(self, ids: list[UUID], timeout: float, every: float = 0.5) -> dict[UUID, Any]:
        """{id: flow run} of those that reached a final state within `timeout` (all of
        them, unless some did not: the caller decides what that means)."""
        done: dict[UUID, Any] = {}

        def all_final() -> dict[UUID, Any] | None:
            for run_id in set(ids) - set(done):
                run = self.api.read_flow_run(run_id)
                if run.state and run.state.is_final():
                    done[run_id] = run
            return done if len(done) == len(ids) else None

        try:
            return poll(all_final, timeout, f"{len(ids)} flow runs to finish", every)
        except TimeoutError:
            return done

    def flow_container(self, flow_run_id: UUID, timeout: float = 120) -> str:
        """The id of the container the worker started for this run, once it has."""
        pid = poll(
            lambda: self.api.read_flow_run(flow_run_id).infrastructure_pid,
            timeout,
            f"the flow container of run {flow_run_id}",
            0.5,
        )
        return pid.rsplit(":", 1)[-1]

    def inspect_running(self, flow_run_id: UUID, timeout: float = 120) -> dict[str, Any]:
        """`docker inspect` of the run's container, as soon as the worker started it."""
        inspected = subprocess.run(
            ["docker", "inspect", self.flow_container(flow_run_id, timeout)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(inspected.stdout)[0]

    def logs(self, flow_run_id: UUID) -> list[str]:
        """All log messages of a run, oldest first (read page by page)."""
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
        from prefect.client.schemas.sorting import LogSort

        messages: list[str] = []
        while True:
            page = self.api.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
                offset=len(messages),
                sort=LogSort.TIMESTAMP_ASC,
            )
            messages += [log.message for log in page]
            if len(page) < 200:
                return messages

    def logs_with(self, flow_run_id: UUID, needle: str, timeout: float = 60) -> list[str]:
        """A run's logs once `needle` is among them (the last lines arrive after the
        final state: the flow container flushes its log buffer as it exits)."""

        def arrived() -> list[str] | None:
            logs = self.logs(flow_run_id)
            return logs if any(needle in message for message in logs) else None

        return poll(arrived, timeout, f"log line {needle!r} of flow run {flow_run_id}", 1)

    def artifact(self, flow_run_id: UUID, key: str) -> Any:
        """The latest version of the run's artifact with this key (a sweep's leaderboard
        has one per finished trial)."""
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        artifacts = self.api.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        versions = sorted((a for a in artifacts if a.key == key), key=lambda a: a.created)
        if not versions:
            raise LookupError(f"flow run {flow_run_id} has no artifact {key!r}")
        return versions[-1]

    def artifact_rows(self, flow_run_id: UUID, key: str) -> list[dict[str, Any]]:
        """The rows of the run's table artifact with this key."""
        table = self.artifact(flow_run_id, key)
        return table.data if isinstance(table.data, list) else json.loads(table.data)

    def artifact_metrics(self, flow_run_id: UUID) -> dict[str, Any]:
        return {
            row["metric"]: row["value"] for row in self.artifact_rows(flow_run_id, "mltoy-metrics")
        }
