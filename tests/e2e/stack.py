"""Driving the compose stack from a test: its settings, the Prefect API, polling."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import LogSort

from tests.support import REPO_ROOT, free_port

T = TypeVar("T")

# Lists the bucket with the admin key and checks each DVC object against its name
# (dvc/files/md5/ab/cdef.. holds bytes whose MD5 is abcdef..): a partial or corrupt
# upload would show up as False.
BUCKET_SCRIPT = """
import hashlib, json, os
from botocore.session import get_session
s3 = get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
    aws_access_key_id=os.environ["S3_ROOT_USER"],
    aws_secret_access_key=os.environ["S3_ROOT_PASSWORD"])
bucket = os.environ["DVC_REMOTE_URL"].split("/")[2]
out = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for obj in page.get("Contents", []):
        key = obj["Key"]
        ok = True
        if "/files/md5/" in key:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            ok = hashlib.md5(body).hexdigest() == "".join(key.split("/")[-2:])
        out[key] = ok
print(json.dumps(out))
"""
# Overridable so several checkouts can each run a stack on one Docker engine.
PROJECT = os.environ.get("MLTOY_E2E_PROJECT", "mltoy-e2e")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
STAGES = ("prepare", "train", "evaluate")


def stack_settings(prepared: dict[str, str]) -> dict[str, str]:
    """The suite's own names, free ports and prebuilt images; `make up` (make env) writes
    them into the clone's .env next to the secrets it generates. MLTOY_BUILD=0: make up
    uses the images e2e-prepare built (same Dockerfiles) instead of building them again."""
    return {
        "MLTOY_BUILD": "0",
        "COMPOSE_PROJECT_NAME": PROJECT,
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
        "MLTOY_NETWORK": f"{PROJECT}-net",
        "MLTOY_SETTINGS_VOLUME": f"{PROJECT}-remote-settings",
        "MLTOY_WORK_POOL": f"{PROJECT}-pool",
        # Shorter than shipped, so the tests of these limits wait seconds, not minutes:
        # a run stuck in Pending is crashed after 90 s (shipped: 600 s; the suite's
        # normal starts take seconds); 5 failed logins in 10 s lock an address out.
        "MLTOY_PENDING_SECONDS": "90",
        "MLTOY_LOGIN_FAILURES": "5",
        "MLTOY_LOGIN_WINDOW": "10s",
    }


def read_env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if line and line[0] != "#"
    )


def stage_outcomes(logs: list[str]) -> dict[str, str]:
    """Both flows log 'stage NAME: OUTCOME' once per stage."""
    outcomes = {}
    for message in logs:
        for stage in STAGES:
            prefix = f"stage {stage}: "
            if message.startswith(prefix) and message[len(prefix) :].isalpha():
                outcomes[stage] = message[len(prefix) :]
    return outcomes


def poll(check: Callable[[], T | None], timeout: float, what: str, every: float = 2.0) -> T:
    """Call `check` until it returns something, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class Stack:
    env_file: Path
    env: dict[str, str]
    compose_files: list[str]
    client: SyncPrefectClient
    project_dir: Path = REPO_ROOT  # the clone the stack was brought up from
    up: subprocess.CompletedProcess[str] | None = None  # what `make up` printed
    runs: dict[str, list[UUID]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PREFECT_PORT']}/api"

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("docker", "compose", "--env-file", str(self.env_file), "-p", PROJECT),
                *(arg for name in self.compose_files for arg in ("-f", name)),
                *args,
            ],
            cwd=self.project_dir,
            capture_output=True,
            text=True,
            check=check,
        )

    def deployment_id(self, option: str) -> UUID:
        flow = {"a": "option-a-dvc-repro", "b": "option-b-stage-dag"}[option]
        return self.client.read_deployment_by_name(f"{flow}/option-{option}").id

    def trigger(self, option: str, **kwargs: Any) -> UUID:
        """Create a run as the UI's Quick run does (kwargs: parameters, state)."""
        flow_run = self.client.create_flow_run_from_deployment(self.deployment_id(option), **kwargs)
        self.runs.setdefault(option, []).append(flow_run.id)
        return flow_run.id

    def run_deployment(self, option: str, timeout: float = 300, **kwargs: Any) -> FlowRun:
        """Trigger a run and wait for its final state."""
        return self.wait_final(self.trigger(option, **kwargs), timeout)

    def wait_state(self, flow_run_id: UUID, names: set[str], timeout: float = 180) -> FlowRun:
        def reached() -> FlowRun | None:
            run = self.client.read_flow_run(flow_run_id)
            return run if run.state and run.state.name in names else None

        return poll(reached, timeout, f"flow run {flow_run_id} to reach {sorted(names)}", 1)

    def flow_container(self, flow_run_id: UUID) -> str:
        """The id of the container the worker started for this run."""
        run = self.client.read_flow_run(flow_run_id)
        assert run.infrastructure_pid, "no container recorded for the run"
        return run.infrastructure_pid.rsplit(":", 1)[-1]

    def in_network(self, script: str) -> Any:
        """Run Python in a one-off container on the stack's network, with the remote's
        admin settings (the object store is not published); return its JSON output."""
        result = self.compose(
            "run", "--rm", "--no-deps", "-T", "remote-init", "python", "-c", script
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    def bucket(self) -> dict[str, bool]:
        """{key: content matches its md5 name} for DVC objects; True for other keys."""
        return self.in_network(BUCKET_SCRIPT)

    def wait_final(self, flow_run_id: UUID, timeout: float = 300) -> FlowRun:
        def final() -> FlowRun | None:
            run = self.client.read_flow_run(flow_run_id)
            return run if run.state and run.state.type.value in FINAL else None

        return poll(final, timeout, f"flow run {flow_run_id} to finish")

    def logs(self, flow_run_id: UUID) -> list[str]:
        """All log messages of a run, oldest first (read page by page)."""
        messages: list[str] = []
        while True:
            page = self.client.read_logs(
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

        return poll(arrived, timeout, f"log line {needle!r} of flow run {flow_run_id}")

    def artifact(self, flow_run_id: UUID, key: str) -> Any:
        artifacts = self.client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        (found,) = [a for a in artifacts if a.key == key]
        return found

    def artifact_metrics(self, flow_run_id: UUID) -> dict[str, Any]:
        table = self.artifact(flow_run_id, "mltoy-metrics")
        rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
        return {row["metric"]: row["value"] for row in rows}
