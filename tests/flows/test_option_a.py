"""Option A: DVC decides what reruns; the flow reports it, retries, and keeps outputs safe."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import flow

from flows import workspace
from flows.option_a import DvcCommandError, dvc_push, pipeline_a
from flows.option_b import pipeline_b
from flows.workspace import WorkspaceBusyError
from mltoy.errors import ParamsError
from tests.flows.helpers import assert_reruns_like_dvc, snapshot, state_history, task_runs
from tests.support import REPO_ROOT, make_project, use_unreachable_s3_remote

ALL = ("prepare", "train", "evaluate")


@pytest.mark.slow
def test_dvc_decides_what_reruns(project):
    first = pipeline_a(project_dir=str(project))
    assert first["stages"] == dict.fromkeys(ALL, "ran")
    assert first["metrics"]["accuracy"] > 0.85
    assert 0 < first["metrics"]["f1_macro"] <= 1

    assert_reruns_like_dvc(lambda: pipeline_a(project_dir=str(project)), project)


@pytest.mark.slow
def test_fail_once_is_retried_and_both_attempts_are_recorded(project):
    state = pipeline_a(project_dir=str(project), fail_once=True, return_state=True)
    assert state.is_completed()
    (repro,) = [
        run
        for run in task_runs(state.state_details.flow_run_id)
        if run.name.startswith("dvc repro")
    ]
    assert repro.run_count == 2
    # The second attempt runs in a state Prefect names "Retrying" (type RUNNING).
    assert state_history(repro.id)[-4:] == ["Running", "AwaitingRetry", "Retrying", "Completed"]


@pytest.mark.slow
def test_metrics_summary_runs_only_when_asked(project):
    def summary_runs(show: bool) -> int:
        state = pipeline_a(project_dir=str(project), show_metrics=show, return_state=True)
        runs = task_runs(state.state_details.flow_run_id)
        return sum(run.name.startswith("metrics summary") for run in runs)

    assert summary_runs(True) == 1
    assert summary_runs(False) == 0


@pytest.mark.slow
def test_bad_params_fail_before_dvc_runs_and_keep_outputs(project):
    pipeline_a(project_dir=str(project))
    before = snapshot(project)
    with pytest.raises(ParamsError, match=r"split\.test_size.*1\.5"):
        pipeline_a(project_dir=str(project), params={"split": {"test_size": 1.5}})
    assert snapshot(project) == before
    assert "1.5" not in (project / "params.yaml").read_text()


@pytest.mark.slow
def test_bad_raw_data_fails_clearly_and_restores_previous_outputs(project):
    pipeline_a(project_dir=str(project))
    before = snapshot(project)
    raw = project / "data/raw/iris.csv"
    raw.write_text(raw.read_text().replace("5.1", "five", 1))
    state = pipeline_a(project_dir=str(project), return_state=True)
    with pytest.raises(DvcCommandError, match=r"sepal_length.*five"):
        state.result()
    runs = task_runs(state.state_details.flow_run_id)
    (repro,) = [run for run in runs if run.name.startswith("dvc repro")]
    assert repro.run_count == 1  # bad input (the stage exited 2, DVC said so): no retry
    assert snapshot(project) == before
    assert "five" in raw.read_text()  # the user's (bad) data is left for them to fix


def workspaces_sharing_a_remote(tmp_path: Path, raw_iris: Path) -> list[Path]:
    """Two workspaces (as two containers) with one DVC remote; the raw data pushed to it
    as the stack's deploy step does."""
    remote = tmp_path / "remote"
    projects = []
    for name in ("one", "two"):
        project = make_project(tmp_path / name, raw_iris)
        (project / ".dvc/config.local").write_text(
            f"[core]\n    no_scm = true\n    remote = shared\n"
            f"['remote \"shared\"']\n    url = {remote}\n"
        )
        projects.append(project)
    subprocess.run(
        [sys.executable, "-m", "deploy.raw_data", "--project-dir", str(projects[0])],
        check=True,
        cwd=REPO_ROOT,
    )
    return projects


@pytest.mark.slow
def test_fresh_workspace_restores_from_the_remote_run_cache(tmp_path, raw_iris):
    """`dvc repro --pull` + `dvc push --run-cache`: what flow containers rely on."""
    projects = workspaces_sharing_a_remote(tmp_path, raw_iris)
    first = pipeline_a(project_dir=str(projects[0]), pull=True, push=True)
    assert first["stages"] == dict.fromkeys(ALL, "ran")
    assert (tmp_path / "remote/runs").is_dir()  # the run cache was pushed

    (projects[1] / "data/raw/iris.csv").unlink()  # a container starts without data
    second = pipeline_a(project_dir=str(projects[1]), pull=True, push=True)
    assert set(second["stages"].values()) <= {"skipped", "restored"}
    assert second["metrics"] == first["metrics"]
    assert snapshot(projects[1]) == snapshot(projects[0])


@pytest.mark.slow
def test_a_locked_model_nobody_holds_comes_from_the_run_cache(tmp_path, raw_iris):
    """dvc.lock names a model made on another machine and never pushed (its bytes depend
    on the CPU's BLAS kernel): the run cache of an earlier run here restores the model
    instead of training again (plain `dvc repro --pull` would retrain every time)."""
    projects = workspaces_sharing_a_remote(tmp_path, raw_iris)
    first = pipeline_a(project_dir=str(projects[0]), pull=True, push=True)
    lock = projects[1] / "dvc.lock"
    model_md5 = hashlib.md5((projects[0] / "models/model.joblib").read_bytes()).hexdigest()
    elsewhere = (projects[0] / "dvc.lock").read_text().replace(model_md5, "deadbeef" * 4)
    assert elsewhere.count("deadbeef" * 4) == 2  # train's out and evaluate's dep
    lock.write_text(elsewhere)

    second = pipeline_a(project_dir=str(projects[1]), pull=True, push=True)
    assert second["stages"]["train"] == "restored", second["stages"]
    assert "ran" not in second["stages"].values()
    assert snapshot(projects[1]) == snapshot(projects[0])
    assert second["metrics"] == first["metrics"]


@pytest.mark.slow
def test_an_unreachable_remote_is_named_in_the_failure(project):
    """A push to a store that does not answer fails with which remote, where, and why."""
    endpoint = use_unreachable_s3_remote(project)

    @flow
    def push_once() -> None:
        dvc_push.with_options(retries=0)(str(project))

    expected = (
        rf"dvc push exited with \d+: remote 'storage' \(s3://mltoy/dvc at {endpoint}\) "
        r"is unreachable: ERROR: .*Could not connect"
    )
    with pytest.raises(DvcCommandError, match=expected):
        push_once()


@pytest.mark.parametrize("pipeline", [pipeline_a, pipeline_b], ids=["option A", "option B"])
def test_a_second_run_in_the_same_project_fails_at_once_naming_the_first(project, pipeline):
    """Two `make run` in one checkout: the second must not write its params under the
    first one's stages. The first run's lock is held here as the first run holds it."""
    params = (project / "params.yaml").read_text()
    busy = rf"another run is using .*pid {os.getpid()}"
    with workspace.exclusive(project), pytest.raises(WorkspaceBusyError, match=busy):
        pipeline(project_dir=str(project), params={"train": {"C": 0.5}})
    assert (project / "params.yaml").read_text() == params  # its params were not written
    assert not (project / "models").exists()  # nor did any stage run
    assert pipeline(project_dir=str(project))["metrics"]["accuracy"] > 0.85  # lock released


@pytest.mark.slow
def test_a_failed_restore_after_a_failed_repro_is_reported(project):
    """If `dvc checkout` cannot put the last good outputs back either (their cache is
    gone), the failure says so: the workspace may lack outputs."""
    pipeline_a(project_dir=str(project))
    for cached in (project / ".dvc/cache").rglob("*"):  # as `dvc gc` would
        if cached.is_file():
            cached.unlink()
    raw = project / "data/raw/iris.csv"
    raw.write_text(raw.read_text().replace("5.1", "five", 1))
    with pytest.raises(DvcCommandError, match=r"sepal_length.*five") as failure:
        pipeline_a(project_dir=str(project))
    assert "restoring the last good outputs failed too (dvc checkout exited with" in str(
        failure.value
    )
