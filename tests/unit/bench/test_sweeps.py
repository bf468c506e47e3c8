"""bench/sweeps.py's plan, against a fake stack: which runs it starts, in what order, with
which limits, and how it turns their outcomes into the section's numbers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from bench import sweeps
from harness.stack import Stack


class FakeApi:
    def __init__(self) -> None:
        self.created: list[tuple[str, dict]] = []
        self.limits: list[int] = []

    def read_deployment_by_name(self, name: str) -> Any:
        return SimpleNamespace(id=name)

    def update_deployment(self, deployment: str, update: Any) -> None:
        self.limits.append(update.concurrency_limit)

    def create_flow_run_from_deployment(self, deployment: str, parameters: dict) -> Any:
        self.created.append((deployment, parameters))
        return SimpleNamespace(id=uuid4())


class FakeStack:
    env = {"MLTOY_WORK_POOL": "pool"}
    project = "bench"
    set_limit = Stack.set_limit  # the driver's own, on the fake API

    def __init__(self) -> None:
        self.api = FakeApi()
        self._c = 0
        self.seen: set[str] = set()  # grids swept before: their rerun is cached

    def unique_c(self) -> float:
        self._c += 1
        return round(0.3 + 0.0011 * self._c, 4)

    def wait_final(self, run_id: Any, timeout: float, every: float) -> Any:
        return SimpleNamespace(id=run_id, state=SimpleNamespace(is_completed=lambda: True))

    def describe(self, run: Any) -> dict:
        return {"stages": {"prepare": "skipped", "train": "ran", "evaluate": "ran"}}

    def artifact_rows(self, run_id: Any, key: str) -> list[dict]:
        assert key == sweeps.LEADERBOARD_KEY
        _, parameters = self.api.created[-1]
        (grid,) = parameters["overrides"]
        cached = grid in self.seen
        self.seen.add(grid)
        values = grid.removeprefix("train.C=").split(",")
        ran = "" if cached else "train"
        return [
            {"trial": n, "state": "Completed", "reason": "", "stages ran": ran}
            for n, _ in enumerate(values, 1)
        ]


def test_sequential_runs_then_a_sweep_per_max_parallel_then_the_last_again(
    monkeypatch, fake_sampler
):
    monkeypatch.setattr(sweeps, "Sampler", fake_sampler)
    stack = FakeStack()
    result = sweeps.sweeps(stack, trials=3, parallel=(1, 2))  # type: ignore[arg-type]

    single = [p for d, p in stack.api.created if d == sweeps.TRIAL_DEPLOYMENTS["a"]]
    swept = [p for d, p in stack.api.created if d == sweeps.SWEEP]
    assert len(single) == 3 and len({p["params"]["train"]["C"] for p in single}) == 3
    assert [p["max_parallel"] for p in swept] == [1, 2, 2]
    grids = [p["overrides"][0] for p in swept]
    assert grids[2] == grids[1] and len(set(grids)) == 2  # new values, then the same again
    assert stack.api.limits == [2, 2]  # raised to the largest max_parallel, then shipped (2)

    labels = [b["label"] for b in result["batches"]]
    assert labels == ["sequential", "max_parallel 1", "max_parallel 2", "max_parallel 2, again"]
    assert [b["trials_that_ran_a_stage"] for b in result["batches"]] == [3, 3, 3, 0]
    assert result["batches"][0]["wall_vs_sequential"] == pytest.approx(1.0)
    assert all(b["failures"] == [] and b["trials"] == 3 for b in result["batches"])
    assert result["cached_vs_first"] > 0
