"""Failure notifications (issue 13.1): a run of the bundle that fails or crashes sends
exactly one message, with its flow, deployment, run, state, one-line reason and UI link,
to MLTOY_NOTIFY_URL (the suite's receiver, tests/e2e/webhook.py) within 60 s; a
Completed run sends none; re-running the deploy step leaves one automation; the URL is
kept secret. Runs on the suite's stack, after test_stack's Completed runs (whose silence
it checks when they are there; it makes one Completed run otherwise)."""

from __future__ import annotations

import subprocess
from uuid import UUID

import pytest

from tests.e2e.stack import Stack
from tests.e2e.webhook import WebhookReceiver, fields

DEADLINE = 60  # seconds from the run's final state to its notification
NOTIFY_NAME = "mltoy: notify failed flow runs"  # deploy/automations.py


def _wait_notified(
    stack: Stack, webhook: WebhookReceiver, run_id: UUID, state: str, reason: str
) -> dict[str, str]:
    run = stack.wait_final(run_id, timeout=240)
    assert run.state.name == state, (run.state.name, run.state.message)
    message = webhook.wait_for(run_id, DEADLINE)
    assert message["path_ok"], "the notification went to another path than MLTOY_NOTIFY_URL's"
    body = message["json"]
    flow = stack.client.read_flow(run.flow_id).name
    got = fields(body["body"])
    assert got["flow"] == flow
    assert got["deployment"] == "option-a"
    assert got["run"] == f"{run.name} ({run.id})"
    assert got["state"] == state
    assert reason in got["reason"], got["reason"]
    assert got["link"] == f"http://127.0.0.1:{stack.env['PREFECT_PORT']}/runs/flow-run/{run.id}"
    assert run.name in body["subject"] and state in body["subject"]
    return got


@pytest.fixture(scope="module")
def bad_param_run(stack: Stack, webhook: WebhookReceiver) -> tuple[UUID, dict[str, str]]:
    """A run of option A that fails on a bad param, and its notification's fields."""
    run_id = stack.trigger("a", parameters={"params": {"train": {"C": "strong"}}})
    return run_id, _wait_notified(stack, webhook, run_id, "Failed", "train.C")


@pytest.fixture(scope="module")
def crashed_run(stack: Stack, webhook: WebhookReceiver) -> tuple[UUID, dict[str, str]]:
    """A run whose container is killed, and its notification's fields."""
    run_id = stack.trigger("a")
    stack.wait_state(run_id, {"Running"}, timeout=180)
    container = stack.flow_container(run_id)
    subprocess.run(["docker", "kill", container], check=True, capture_output=True)
    # The worker sees its container exit and reports the run Crashed.
    return run_id, _wait_notified(stack, webhook, run_id, "Crashed", "")


def test_a_run_failing_on_a_bad_param_notifies_with_its_one_line_reason(
    bad_param_run: tuple[UUID, dict[str, str]],
):
    _, got = bad_param_run
    assert "\n" not in got["reason"] and "Traceback" not in got["reason"]


def test_a_crashed_container_notifies(crashed_run: tuple[UUID, dict[str, str]]):
    _, got = crashed_run
    assert got["reason"] != "no message"


def test_each_failed_run_notified_once_and_completed_runs_never(
    stack: Stack,
    webhook: WebhookReceiver,
    bad_param_run: tuple[UUID, dict[str, str]],
    crashed_run: tuple[UUID, dict[str, str]],
):
    failed = [
        run
        for option_runs in stack.runs.values()
        for run in (stack.client.read_flow_run(i) for i in option_runs)
        if run.state and run.state.name in ("Failed", "Crashed", "TimedOut")
    ]
    assert {bad_param_run[0], crashed_run[0]} <= {run.id for run in failed}  # this module's
    for run in failed:
        assert len(webhook.about(run.id)) == 1, run.name
    completed = [
        run
        for option_runs in stack.runs.values()
        for run in (stack.client.read_flow_run(i) for i in option_runs)
        if run.state and run.state.is_completed()
    ]
    if not completed:  # this module alone: one Completed run of its own
        completed = [stack.run_deployment("a")]
        assert completed[0].state.is_completed()
        # Give a wrong notification the time a right one gets.
        with pytest.raises(TimeoutError):
            webhook.wait_for(completed[0].id, DEADLINE)
    for run in completed:
        assert webhook.about(run.id) == [], run.name


def test_redeploying_leaves_one_automation_and_the_url_stays_secret(
    stack: Stack, webhook: WebhookReceiver
):
    deploy = stack.compose("run", "--rm", "deploy")
    assert "failure notifications: a generic webhook (JSON POST)" in deploy.stdout
    token = stack.env["MLTOY_NOTIFY_URL"].rsplit("/", 1)[1]
    assert token not in deploy.stdout + deploy.stderr
    (automation,) = stack.client.read_automations_by_name(NOTIFY_NAME)
    (action,) = automation.actions
    block = stack.client.read_block_document(action.block_document_id, include_secrets=False)
    assert token not in str(block.data) and "url" in block.data["secrets"]
    # Nowhere in the deployments either, nor in the server's and worker's logs.
    for option in ("a", "b"):
        deployment = stack.client.read_deployment(stack.deployment_id(option))
        assert token not in deployment.model_dump_json()
    assert token not in stack.compose("logs", "--no-color").stdout
    # The deploy step got it as a file: `docker inspect` of its container does not show it.
    (container,) = stack.compose("ps", "--all", "--quiet", "deploy").stdout.split()
    inspected = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    ).stdout
    assert "MLTOY_NOTIFY_URL_FILE" in inspected and token not in inspected
