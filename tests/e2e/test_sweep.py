"""Parameter sweeps on the stack: DVC's -S grid, one trial per container, a leaderboard.

The 2 x 2 sweep runs once for the module (fixture `first_sweep`); the rerun test runs it
again after it. Trials use params no other test of the suite runs (train.C 0.25 and 4),
so the first sweep trains, and its rerun shows what the caches save.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)

from flows.sweep import BEST_KEY, LEADERBOARD_KEY, PROGRESS_KEY, TRIAL_DEPLOYMENTS
from tests.e2e.stack import STAGES, Stack
from tests.e2e.test_mlflow import admin, mlflow_run, mlflow_url  # noqa: F401 (fixtures)
from tests.support import run_in_repo

SWEEP = "sweep/sweep"
GRID = ["train.C=0.25,4", "split.seed=3,4"]
# Trials wait for the trial deployment's 2 slots; each takes well under a minute alone.
DEADLINE = 900


def run_sweep(stack: Stack, overrides: list[str]) -> tuple[Any, float]:
    """The sweep run once final, and its wall time in minutes."""
    deployment = stack.api.read_deployment_by_name(SWEEP)
    started = time.monotonic()
    flow_run = stack.api.create_flow_run_from_deployment(
        deployment.id, parameters={"overrides": overrides, "max_parallel": 2}
    )
    final = stack.wait_final(flow_run.id, DEADLINE, every=3)
    minutes = (time.monotonic() - started) / 60
    print(f"sweep {overrides}: {final.state.name} in {minutes:.1f} min")
    return final, minutes


def trials_of(stack: Stack, parent: UUID) -> list[Any]:
    return stack.api.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])
        )
    )


def run_id(row: dict[str, Any]) -> UUID:
    return UUID(row["run"].rstrip("/").rsplit("/", 1)[-1])


@pytest.fixture(scope="module")
def first_sweep(stack: Stack) -> Any:
    sweep, _ = run_sweep(stack, GRID)
    return sweep


def test_a_2x2_sweep_runs_4_trials_in_their_own_containers_and_ranks_them(
    stack: Stack, first_sweep: Any
):
    assert first_sweep.state.name == "Completed", first_sweep.state.message
    trials = trials_of(stack, first_sweep.id)
    assert len(trials) == 4
    assert {t.state.name for t in trials} == {"Completed"}
    trial_deployment = stack.api.read_deployment_by_name(TRIAL_DEPLOYMENTS["a"]).id
    assert {t.deployment_id for t in trials} == {trial_deployment}
    containers = {stack.flow_container(t.id) for t in trials}
    assert len(containers) == 4 and stack.flow_container(first_sweep.id) not in containers

    rows = stack.artifact_rows(first_sweep.id, LEADERBOARD_KEY)
    assert len(rows) == 4
    assert {(r["train.C"], r["split.seed"]) for r in rows} == set(
        itertools.product([0.25, 4], [3, 4])
    )
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    accuracies = [r["accuracy"] for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in rows:  # each row is its trial's own result, linked to its run
        assert stack.artifact_metrics(run_id(row)) == {
            name: row[name] for name in stack.artifact_metrics(run_id(row))
        }
        assert row["state"] == "Completed" and row["reason"] == ""
        assert "train" in row["stages ran"].split(", ")
    assert {run_id(r) for r in rows} == {t.id for t in trials}
    best = stack.artifact(first_sweep.id, BEST_KEY).data
    assert f"**Trial {rows[0]['trial']}**" in best
    assert f"accuracy = {max(accuracies)}" in best
    assert stack.artifact(first_sweep.id, PROGRESS_KEY).data == 100.0


def test_in_mlflow_the_sweep_is_one_run_with_a_nested_run_per_trial(
    stack: Stack,
    first_sweep: Any,
    admin: Any,  # noqa: F811
):
    parent = mlflow_run(admin, first_sweep.id)
    nested = admin.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    rows = {r["trial"]: r for r in stack.artifact_rows(first_sweep.id, LEADERBOARD_KEY)}
    assert sorted(run.info.run_name for run in nested) == [f"trial {n}" for n in range(1, 5)]
    for run in nested:
        row = rows[int(run.info.run_name.split()[1])]
        assert run.data.metrics["accuracy"] == row["accuracy"]
        assert run.data.params == {
            "train.C": str(row["train.C"]),
            "split.seed": str(row["split.seed"]),
        }
        assert run.data.tags["prefect.flow_run_url"] == row["run"]
    assert parent.data.metrics["best_accuracy"] == max(r["accuracy"] for r in rows.values())
    # The trials themselves are not tracked: concurrent trials would race on the registry.
    experiments = [e.experiment_id for e in admin.search_experiments()]
    for row in rows.values():
        flow_run = run_id(row)
        assert not admin.search_runs(
            experiments, filter_string=f"tags.`prefect.flow_run_id` = '{flow_run}'"
        )


def test_an_invalid_value_fails_its_trial_in_one_line_and_the_others_complete(stack: Stack):
    sweep, _ = run_sweep(stack, ["train.C=0.25,-1", "split.seed=3"])
    assert sweep.state.name == "Completed", sweep.state.message
    rows = {r["trial"]: r for r in stack.artifact_rows(sweep.id, LEADERBOARD_KEY)}
    assert rows[1]["state"] == "Completed"
    assert rows[2]["state"] == "Failed"
    assert rows[2]["reason"] == "train.C = -1: must be a finite number > 0"
    assert rows[2]["run"] == ""  # refused before any run started
    assert [t.state.name for t in trials_of(stack, sweep.id)] == ["Completed"]
    of_sweep = FlowRunFilter(id=FlowRunFilterId(any_=[sweep.id]))
    tasks = {t.name: t.state.name for t in stack.api.read_task_runs(flow_run_filter=of_sweep)}
    assert tasks["trial 2: train.C=-1 split.seed=3"] == "Failed"


def test_the_same_sweep_again_skips_every_stage_of_every_trial(stack: Stack, first_sweep: Any):
    assert first_sweep.state.name == "Completed"
    again, _ = run_sweep(stack, GRID)
    assert again.state.name == "Completed", again.state.message
    rows = stack.artifact_rows(again.id, LEADERBOARD_KEY)
    first = {r["trial"]: r for r in stack.artifact_rows(first_sweep.id, LEADERBOARD_KEY)}
    assert len(rows) == 4
    for row in rows:
        assert row["stages ran"] == "", row
        assert row["stages skipped"] == ", ".join(STAGES)
        assert row["accuracy"] == first[row["trial"]]["accuracy"]


def test_the_local_sweep_of_the_same_grid_gives_the_stacks_metrics(
    stack: Stack, first_sweep: Any, project: Path, tmp_path: Path
):
    """`python -m flows.cli sweep` here (a temporary local Prefect, no Docker) on the same
    grid, data and seeds: every trial's metrics equal the stack's trial's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    # As `make run` sets it: the temporary server starts slowly beside a busy stack (with
    # Prefect's default 20 s it timed out in a CI run, "database is locked").
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    overrides = [arg for override in GRID for arg in ("-S", override)]
    command = [sys.executable, "-m", "flows.cli", "sweep", *overrides, "--json"]
    done = run_in_repo([*command, "--project-dir", str(project)], env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    local = {
        (row["swept"]["train.C"], row["swept"]["split.seed"]): row["metrics"]
        for row in json.loads(done.stdout)
    }
    rows = stack.artifact_rows(first_sweep.id, LEADERBOARD_KEY)
    metric_names = set(next(iter(local.values())))
    assert {"accuracy", "f1_macro"} <= metric_names
    stacked = {
        (row["train.C"], row["split.seed"]): {name: row[name] for name in metric_names}
        for row in rows
    }
    assert set(local) == set(itertools.product([0.25, 4], [3, 4]))
    assert local == stacked
