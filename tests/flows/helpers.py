"""Small test helpers for flow tests: edit params, snapshot outputs, read task runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun

from harness.workspace import set_param

OUTPUTS = (
    "data/prepared/train.csv",
    "data/prepared/test.csv",
    "models/model.joblib",
    "reports/metrics.json",
    "reports/plots/confusion.csv",
)


def assert_reruns_like_dvc(run: Callable[[], dict[str, Any]], project: Path) -> None:
    """After a first full run: what a second run, a split change and a train change rerun.

    The same expectations for both options: DVC's for option A, option B's cache for B.
    """
    every = ("prepare", "train", "evaluate")
    assert run()["stages"] == dict.fromkeys(every, "skipped")
    set_param(project, "split.test_size", 0.25)
    assert run()["stages"] == dict.fromkeys(every, "ran")
    set_param(project, "train.C", 0.5)
    assert run()["stages"] == {"prepare": "skipped", "train": "ran", "evaluate": "ran"}


def snapshot(project: Path) -> dict[str, bytes]:
    return {relpath: (project / relpath).read_bytes() for relpath in OUTPUTS}


def task_runs(flow_run_id: UUID) -> list[TaskRun]:
    async def read() -> list[TaskRun]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    return asyncio.run(read())


def state_history(task_run_id: UUID) -> list[str]:
    async def read() -> list[str]:
        async with get_client() as client:
            states = await client.read_task_run_states(task_run_id)
            return [state.name for state in sorted(states, key=lambda s: s.timestamp)]

    return asyncio.run(read())
