"""A local sweep (what `python -m flows.cli sweep` runs): trials as subflows on copies of
the project, an invalid trial failed up front, a leaderboard, a free repeat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.sweep import BEST_KEY, LEADERBOARD_KEY, PROGRESS_KEY, sweep
from tests.flows.helpers import task_runs
from tests.flows.test_tracking import artifacts_of, client, mlflow_store, versions_of  # noqa: F401

GRID = ["train.C=0.5,1,-1"]
ALL = ["prepare", "train", "evaluate"]


def run_sweep(project, option="a", overrides=GRID):
    state = sweep(
        overrides=overrides, option=option, project_dir=str(project), local=True, return_state=True
    )
    return state, state.result(raise_on_failure=False)


@pytest.mark.slow
def test_a_local_sweep_ranks_its_trials_fails_the_invalid_one_and_repeats_for_free(project):
    params_before = (project / "params.yaml").read_text()
    state, rows = run_sweep(project)
    assert state.is_completed()
    assert [row["state"] for row in rows] == ["Completed", "Completed", "Failed"]
    accuracies = [row["metrics"]["accuracy"] for row in rows[:2]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {row["swept"]["train.C"] for row in rows[:2]} == {0.5, 1}
    invalid = rows[2]
    assert invalid["trial"] == 3 and invalid["metrics"] == {} and invalid["run"] == ""
    assert invalid["reason"] == "train.C = -1: must be a finite number > 0"
    for row in rows[:2]:
        assert row["stages"]["train"] == "ran"
    # The trials ran on copies: the project's own params and outputs are untouched.
    assert (project / "params.yaml").read_text() == params_before
    assert not (project / "models/model.joblib").exists()

    parent = state.state_details.flow_run_id
    tasks = {t.name: t for t in task_runs(parent)}
    assert tasks["trial 3: train.C=-1"].state.name == "Failed"
    assert tasks["trial 1: train.C=0.5"].state.name == "Completed"
    artifacts = artifacts_of(parent)
    table = json.loads(artifacts[LEADERBOARD_KEY].data)
    assert [r["trial"] for r in table] == [r["trial"] for r in rows]
    assert [r["rank"] for r in table] == [1, 2, None]
    assert table[0]["accuracy"] == max(accuracies)
    assert table[0]["train.C"] == rows[0]["swept"]["train.C"]
    assert all("train" in r["stages ran"].split(", ") for r in table[:2])
    assert table[2]["reason"] == invalid["reason"]
    best = artifacts[BEST_KEY].data
    assert f"**Trial {rows[0]['trial']}**" in best and f"accuracy = {max(accuracies)}" in best
    assert artifacts[PROGRESS_KEY].data == 100.0
    # The leaderboard grew as trials finished: a version per trial, each ranked.
    versions = [json.loads(v.data) for v in versions_of(parent, LEADERBOARD_KEY)]
    assert [len(version) for version in versions] == [1, 2, 3]
    assert versions[-1] == table

    # The same sweep again: every stage of every trial is restored from the shared cache.
    _, again = run_sweep(project)
    assert [row["metrics"] for row in again] == [row["metrics"] for row in rows]
    for row in again[:2]:
        assert set(row["stages"]) == set(ALL)
        assert "ran" not in row["stages"].values(), row


@pytest.mark.slow
def test_option_b_trials_give_option_as_metrics_and_repeat_cached(project):
    _, a_rows = run_sweep(project, "a", ["train.C=0.5", "split.seed=3"])
    _, b_rows = run_sweep(project, "b", ["train.C=0.5", "split.seed=3"])
    assert b_rows[0]["metrics"] == a_rows[0]["metrics"]
    assert b_rows[0]["stages"] == dict.fromkeys(ALL, "ran")
    _, b_again = run_sweep(project, "b", ["train.C=0.5", "split.seed=3"])
    assert b_again[0]["stages"] == dict.fromkeys(ALL, "skipped")


@pytest.mark.slow
def test_a_sweep_fails_only_when_every_trial_failed(project):
    state, _ = run_sweep(project, overrides=["train.C=-1,0", "evaluate.average=median"])
    assert state.is_failed()
    assert (
        "all 2 trials failed; first: trial 1 (train.C=-1 evaluate.average=median): train.C = -1"
        in (state.message)
    )
    table = json.loads(artifacts_of(state.state_details.flow_run_id)[LEADERBOARD_KEY].data)
    assert [r["state"] for r in table] == ["Failed", "Failed"]
    assert yaml.safe_load((project / "params.yaml").read_text())["train"]["C"] == 1.0


@pytest.mark.slow
def test_with_mlflow_the_sweep_is_a_run_with_a_nested_run_per_trial(project, mlflow_store):  # noqa: F811
    state, rows = run_sweep(project, "b", ["train.C=0.5,-1", "split.seed=3"])
    assert state.is_completed()
    mlflow = client(mlflow_store)
    (experiment,) = [e for e in mlflow.search_experiments() if e.name == "sweep"]
    runs = mlflow.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    assert set(trials) == {"trial 1", "trial 2"}
    assert {r.data.tags["mlflow.parentRunId"] for r in trials.values()} == {parent.info.run_id}
    assert parent.data.tags["prefect.flow_run_id"] == str(state.state_details.flow_run_id)
    good, bad = trials["trial 1"], trials["trial 2"]
    assert good.data.params == {"train.C": "0.5", "split.seed": "3"}
    assert good.data.metrics["accuracy"] == rows[0]["metrics"]["accuracy"]
    assert good.info.status == "FINISHED" and good.data.tags["mltoy.stage.train"] == "ran"
    assert bad.info.status == "FAILED"
    assert bad.data.tags["mltoy.trial.reason"] == "train.C = -1: must be a finite number > 0"
    assert parent.data.metrics["best_accuracy"] == rows[0]["metrics"]["accuracy"]
    assert parent.data.tags["mltoy.sweep.best_trial"] == "1"


def test_a_trials_copy_keeps_only_lock_entries_whose_outputs_the_cache_holds(project):
    """The committed dvc.lock names outputs made on another machine (a model's bytes depend
    on the CPU's BLAS kernel): a trial's copy drops those entries, so DVC asks its run cache;
    once the project was reproduced here, the copy keeps every entry."""
    from flows.trial_workspace import trial_workspace

    stages = set(yaml.safe_load((project / "dvc.lock").read_text())["stages"])
    assert stages == set(ALL)
    with trial_workspace(project) as copy:
        lock = copy / "dvc.lock"
        kept = set(yaml.safe_load(lock.read_text())["stages"]) if lock.exists() else set()
    assert kept == set(), kept  # a fresh project's cache holds none of them
    reproduced = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=project,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
    )
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    with trial_workspace(project) as copy:
        assert set(yaml.safe_load((copy / "dvc.lock").read_text())["stages"]) == set(ALL)
