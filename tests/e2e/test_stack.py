"""The stack as a user drives it: up, deployments, runs in containers, the remote.

Tests run in file order against one stack; later ones build on the runs of earlier ones
(the second run of a deployment must find the first one's cache in the remote).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Scheduled

from tests.e2e.stack import STAGES, Stack, poll, stage_outcomes

OPTIONS = ("a", "b")


def bucket_keys(stack: Stack, prefix: str) -> list[str]:
    return [key for key in stack.bucket() if key.startswith(prefix)]


def test_deployments_are_registered_with_their_schedules(stack: Stack):
    pool = stack.client.read_work_pool(stack.env["MLTOY_WORK_POOL"])
    assert pool.type == "docker"
    fixed = pool.base_job_template["job_configuration"]
    assert fixed["image_pull_policy"] == "Never"
    assert fixed["networks"] == [stack.env["MLTOY_NETWORK"]]
    for option, minute in (("a", "0"), ("b", "30")):
        deployment = stack.client.read_deployment(stack.deployment_id(option))
        assert deployment.work_pool_name == pool.name
        assert f"option-{option}" in deployment.tags
        assert deployment.description
        assert deployment.concurrency_limit == 1 or (
            deployment.global_concurrency_limit and deployment.global_concurrency_limit.limit == 1
        )
        (schedule,) = deployment.schedules
        assert schedule.active
        assert schedule.schedule.cron == f"{minute} * * * *"
        assert deployment.job_variables["image"] == stack.env["MLTOY_IMAGE"]
        # The rest is the pool's (deploy/work_pool.py), which deployments cannot change.
        assert set(deployment.job_variables) <= {"image", "env", "mem_limit"}
        # No secret travels in the deployment: the flow containers read a volume.
        assert stack.env["S3_ROOT_PASSWORD"] not in json.dumps(deployment.job_variables)


def test_schedules_create_upcoming_runs_by_themselves(stack: Stack):
    """The server's scheduler fills in future runs: nobody has to trigger them."""
    ids = [stack.deployment_id(option) for option in OPTIONS]

    def upcoming():
        runs = stack.client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        )
        found = {run.deployment_id for run in runs}
        return runs if found == set(ids) else None

    runs = poll(upcoming, 120, "scheduled runs of both deployments")
    assert all(run.expected_start_time > datetime.now(UTC) for run in runs)


@pytest.mark.parametrize("option", OPTIONS)
def test_manual_run_completes_in_a_flow_container(stack: Stack, option: str):
    run = stack.run_deployment(option)
    assert run.state.is_completed(), run.state.message
    assert run.work_pool_name == stack.env["MLTOY_WORK_POOL"]
    assert run.infrastructure_pid and "docker" in run.infrastructure_pid  # its own container
    logs = stack.logs_with(run.id, "stage evaluate: ")
    assert stage_outcomes(logs) == dict.fromkeys(STAGES, "ran"), logs
    metrics = stack.artifact_metrics(run.id)
    assert metrics["accuracy"] > 0.85 and 0 < metrics["f1_macro"] <= 1

    # The metrics file itself is in the remote, under the MD5 of its bytes (mltoy writes
    # it as sorted, indented JSON), like every DVC object.
    content = (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode()
    md5 = hashlib.md5(content).hexdigest()
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in stack.bucket()


def test_remote_holds_dvc_objects_run_cache_and_results(stack: Stack):
    for option in OPTIONS:
        stack.completed_run(option)  # (run alone: the runs that push them, made here)
    assert len(bucket_keys(stack, "dvc/files/md5/")) >= 6  # raw, 2 splits, model, 2 reports
    assert bucket_keys(stack, "dvc/runs/"), "option A pushes DVC's run cache"
    assert bucket_keys(stack, "prefect-results/"), "option B keeps its task results there"


@pytest.mark.parametrize("option", OPTIONS)
def test_second_run_in_a_new_container_skips_every_stage(stack: Stack, option: str):
    first = stack.completed_run(option)  # (run alone: made here)
    run = stack.run_deployment(option)
    assert run.state.is_completed(), run.state.message
    outcomes = stage_outcomes(stack.logs_with(run.id, "stage evaluate: "))
    assert set(outcomes) == set(STAGES)
    assert set(outcomes.values()) <= {"skipped", "restored"}, outcomes
    assert stack.artifact_metrics(run.id) == stack.artifact_metrics(first)
    # Nor is the picture of the unchanged confusion matrix drawn again: its cached result
    # is in the shared results storage, not in the first run's (gone) container.
    tasks = stack.client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
    )
    (plot,) = [t for t in tasks if t.name.startswith("confusion matrix plot")]
    assert plot.state.name == "Cached", plot.state


def test_fail_once_is_retried_and_completes(stack: Stack):
    run = stack.run_deployment("a", parameters={"fail_once": True})
    assert run.state.is_completed(), run.state.message
    (repro,) = [
        t
        for t in stack.client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
        if t.flow_run_id == run.id and t.name.startswith("dvc repro")
    ]
    assert repro.run_count == 2
    stack.logs_with(run.id, "fail_once")


def test_run_scheduled_for_later_is_picked_up_without_action(stack: Stack):
    """A run the scheduler made is run by the worker when its time comes: one of option B's
    hourly runs, its time moved to 15 s from now (nobody waits for the hour)."""
    (upcoming,) = stack.client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[stack.deployment_id("b")])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=1,
    )
    assert upcoming.auto_scheduled, upcoming  # the scheduler's, not made by a test
    start = datetime.now(UTC) + timedelta(seconds=15)
    stack.client.set_flow_run_state(upcoming.id, Scheduled(scheduled_time=start), force=True)
    assert stack.client.read_flow_run(upcoming.id).state.is_scheduled()
    run = stack.wait_final(upcoming.id, timeout=300)
    assert run.state.is_completed(), run.state.message
    assert run.start_time >= start - timedelta(seconds=1)


def _in_postgres(stack: Stack, sql: str) -> str:
    return stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "prefect", "-d", "prefect", "-tAc", sql
    ).stdout.strip()


def test_down_and_up_keep_deployments_and_history(stack: Stack):
    before = {option: stack.deployment_id(option) for option in OPTIONS}
    stack.completed_run("a")  # (run alone: a history of one run, made here)
    history = [run_id for runs in stack.runs.values() for run_id in runs]
    # The history is PostgreSQL's (not a SQLite file in the server's container).
    stored = _in_postgres(stack, "select id from flow_run").split()
    assert history and set(map(str, history)) <= set(stored)
    stack.compose("down")  # no -v: volumes stay
    stack.compose("up", "-d", "--wait", "--no-build")
    stack.compose("wait", "deploy")
    assert {option: stack.deployment_id(option) for option in OPTIONS} == before
    for run_id in history:
        assert stack.client.read_flow_run(run_id).state.is_completed()
    # ...and the restarted stack still runs flows.
    assert stack.run_deployment("a").state.is_completed()
