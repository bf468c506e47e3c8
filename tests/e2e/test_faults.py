"""Faults injected into the running stack: each run ends in a final state, nothing lost.

These run last (see conftest): they stop, kill and disconnect parts of the stack.
"""

from __future__ import annotations

import random
import subprocess
import time

import pytest
import yaml

from tests.e2e.stack import S3_ADMIN, Stack, poll
from tests.support import REPO_ROOT


def new_params() -> dict:
    """Params no run has used yet: every stage must really run (and push)."""
    return {"split": {"seed": random.randrange(10_000, 10**9)}}


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def assert_remote_sound(stack: Stack) -> dict[str, bool]:
    objects = stack.bucket()
    corrupt = [key for key, ok in objects.items() if not ok]
    assert not corrupt, f"objects whose content does not match their name: {corrupt}"
    return objects


class StoreOffline:
    """The object store dropped off the stack's network (as in a network partition)."""

    def __init__(self, stack: Stack) -> None:
        self.store = stack.compose("ps", "-q", "s3").stdout.strip()
        self.network = stack.env["MLTOY_NETWORK"]

    def __enter__(self) -> StoreOffline:
        docker("network", "disconnect", self.network, self.store)
        return self

    def __exit__(self, *exc: object) -> None:
        docker("network", "connect", "--alias", "s3", self.network, self.store)


def wait_for_process(container: str, needle: str, timeout: float) -> None:
    """Until a process whose command line holds `needle` runs in `container`.

    Polled fast: a `dvc push` imports for a second or two before it opens a connection,
    so the store can be cut off while that very command runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        top = subprocess.run(["docker", "top", container], capture_output=True, text=True)
        if needle in top.stdout:
            return
        time.sleep(0.05)
    raise TimeoutError(f"no '{needle}' process in container {container} after {timeout:.0f}s")


def assert_outputs_restorable(stack: Stack, params: dict) -> None:
    """DVC's own check that a run's push is whole: a new container with the same params
    restores every stage from the remote's run cache and runs none."""
    run = stack.run_deployment("a", parameters={"params": params})
    assert run.state.is_completed(), run.state.message
    outcomes = [line for line in stack.logs_with(run.id, "stage evaluate:") if "stage " in line]
    assert not [line for line in outcomes if line.endswith(": ran")], outcomes


def test_object_store_outage_is_ridden_out_by_retries(stack: Stack):
    """The store drops off the network while a run starts; it retries, then completes."""
    with StoreOffline(stack):
        run_id = stack.trigger("a", parameters={"params": new_params()})
        stack.wait_state(run_id, {"Running"}, timeout=120)
        time.sleep(15)  # the run's first attempts fail on the unreachable store
    run = stack.wait_final(run_id, timeout=300)
    assert run.state.is_completed(), run.state.message
    stack.logs_with(run_id, "Retry")
    assert_remote_sound(stack)
    assert stack.run_deployment("a").state.is_completed()  # and the next run is fine


def test_object_store_outage_during_dvc_push_is_retried_and_nothing_is_lost(stack: Stack):
    params = new_params()
    run_id = stack.trigger("a", parameters={"params": params})
    container = poll(
        lambda: stack.client.read_flow_run(run_id).infrastructure_pid, 120, "the flow container"
    ).rsplit(":", 1)[-1]
    wait_for_process(container, "dvc push", timeout=240)
    with StoreOffline(stack):
        time.sleep(12)  # the first push attempts fail on the unreachable store
    run = stack.wait_final(run_id, timeout=300)
    assert run.state.is_completed(), run.state.message
    logs = stack.logs_with(run_id, "Retry")
    assert any("dvc push" in line and "is unreachable" in line for line in logs), logs
    assert_remote_sound(stack)
    assert_outputs_restorable(stack, params)


def test_permanent_store_outage_fails_the_run_naming_the_remote(stack: Stack):
    before = assert_remote_sound(stack)
    with StoreOffline(stack):
        run = stack.run_deployment("a", parameters={"params": new_params()}, timeout=400)
    assert run.state.is_failed(), run.state
    message = run.state.message or ""
    remote = stack.env.get("DVC_REMOTE_URL", "s3://mltoy/dvc")
    assert f"remote 'storage' ({remote} at http://s3:9000) is unreachable" in message, message
    stack.logs_with(run.id, "Retry 3/3")  # it tried, with back-off, before giving up
    after = assert_remote_sound(stack)
    assert set(before) <= set(after)
    assert stack.run_deployment("a").state.is_completed()  # the next run is fine


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ({"params": {"split": {"test_size": 2}}}, "split.test_size"),
        ({"params": {"train": {"C": "strong"}}}, "train.C"),
        ({"params": {"train": {"gamma": 1}}}, "train.gamma"),
        # A params file in the image that is not one: dvc.yaml has none of the params.
        ({"params_file": "/app/dvc.yaml"}, "/app/dvc.yaml: split is missing"),
        ({"params_file": "/app/no-such-params.yaml"}, "/app/no-such-params.yaml"),
    ],
)
def test_bad_parameters_fail_fast_with_a_one_line_reason(stack: Stack, parameters, reason):
    before = assert_remote_sound(stack)
    started = time.monotonic()
    run = stack.run_deployment("b", parameters=parameters)
    assert run.state.is_failed()
    message = run.state.message or ""
    assert reason in message and "\n" not in message.strip(), message
    assert time.monotonic() - started < 90
    after = assert_remote_sound(stack)
    assert set(before) <= set(after)  # nothing in the remote was removed


def test_two_runs_of_one_deployment_never_overlap(stack: Stack):
    ids = [stack.trigger("b", parameters={"params": new_params()}) for _ in range(2)]
    runs = [stack.wait_final(run_id, timeout=400) for run_id in ids]
    assert all(run.state.is_completed() for run in runs), [r.state for r in runs]
    first, second = sorted(runs, key=lambda run: run.start_time)
    assert first.end_time <= second.start_time  # concurrency_limit 1: one at a time


def test_server_restart_mid_run_still_ends_completed(stack: Stack):
    history = [run_id for runs in stack.runs.values() for run_id in runs]
    run_id = stack.trigger("a", parameters={"params": new_params()})
    stack.wait_state(run_id, {"Running"}, timeout=120)
    stack.compose("restart", "prefect-server")
    stack.compose("up", "-d", "--wait", "--no-build", "prefect-server")
    run = stack.wait_final(run_id, timeout=300)
    assert run.state.is_completed(), run.state.message
    assert all(stack.client.read_flow_run(old).state for old in history)  # history kept


def test_worker_killed_mid_run_then_restarted(stack: Stack):
    run_id = stack.trigger("a", parameters={"params": new_params()})
    stack.wait_state(run_id, {"Running"}, timeout=120)
    stack.compose("kill", "worker")
    run = stack.wait_final(run_id, timeout=300)  # the flow container reports by itself
    assert run.state.is_completed(), run.state.message
    stack.compose("up", "-d", "--wait", "--no-build", "worker")
    assert stack.run_deployment("a").state.is_completed()  # slot free, worker back


def test_run_orphaned_by_worker_and_container_death_is_crashed_by_heartbeats(stack: Stack):
    """Worker and flow container both die: nobody can report the run's end. The
    zombie-run automation must mark it Crashed (missed heartbeats) and free the slot."""
    run_id = stack.trigger("a", parameters={"params": new_params()})
    stack.wait_state(run_id, {"Running"}, timeout=120)
    time.sleep(3)  # the first heartbeat goes out as the run starts
    stack.compose("kill", "worker")
    docker("kill", stack.flow_container(run_id))
    run = stack.wait_state(run_id, {"Crashed"}, timeout=300)
    assert "heartbeat" in (run.state.message or "").lower(), run.state.message
    stack.compose("up", "-d", "--wait", "--no-build", "worker")
    assert stack.run_deployment("a").state.is_completed()  # the concurrency slot is free


def test_missing_raw_data_in_the_remote_fails_with_a_clear_reason(stack: Stack):
    objects = stack.bucket()
    md5 = yaml.safe_load((REPO_ROOT / "data/raw/iris.csv.dvc").read_text())["outs"][0]["md5"]
    raw_key = next(key for key in objects if key.endswith(md5[2:]) and f"/{md5[:2]}/" in key)
    stack.in_network(
        S3_ADMIN + "s3.delete_object(Bucket=bucket, Key=sys.argv[1]); print(json.dumps(True))",
        raw_key,
    )
    try:
        run = stack.run_deployment("b", parameters={"params": new_params()})
        assert run.state.is_failed()
        assert "iris.csv" in (run.state.message or ""), run.state.message
    finally:
        stack.compose("run", "--rm", "deploy")  # puts the raw data back
    poll(lambda: raw_key in stack.bucket() or None, 60, "raw data back in the remote")
    assert stack.run_deployment("b").state.is_completed()
