"""Faults injected into the running stack: each run ends in a final state, nothing lost.

These run last (see conftest): they stop, kill and disconnect parts of the stack.
"""

from __future__ import annotations

import json
import random
import subprocess
from uuid import UUID

import pytest
import yaml
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from tests.e2e.stack import S3_ADMIN, Stack, poll
from tests.e2e.webhook import WebhookReceiver, fields
from tests.support import REPO_ROOT


def new_params() -> dict:
    """Params no run has used yet: every stage must really run (and push)."""
    return {"split": {"seed": random.randrange(10_000, 10**9)}}


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


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


def health(container: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", container).strip()


class Paused:
    """A container frozen (docker pause) for the time of the block: whatever it runs is
    certainly still in flight when the block ends."""

    def __init__(self, container: str) -> None:
        self.container = container

    def __enter__(self) -> Paused:
        docker("pause", self.container)
        return self

    def __exit__(self, *exc: object) -> None:
        docker("unpause", self.container)


def wait_for_process(container: str, needle: str, timeout: float) -> None:
    """Until a process whose command line holds `needle` runs in `container`.

    Polled fast: a `dvc push` imports for a second or two before it opens a connection,
    so the store can be cut off while that very command runs."""

    def running() -> bool | None:
        top = subprocess.run(["docker", "top", container], capture_output=True, text=True)
        return True if needle in top.stdout else None

    poll(running, timeout, f"a '{needle}' process in container {container}", every=0.05)


def assert_outputs_restorable(stack: Stack, params: dict) -> None:
    """DVC's own check that a run's push is whole: a new container with the same params
    restores every stage from the remote's run cache and runs none."""
    run = stack.run_deployment("a", parameters={"params": params})
    assert run.state.is_completed(), run.state.message
    outcomes = [line for line in stack.logs_with(run.id, "stage evaluate:") if "stage " in line]
    assert not [line for line in outcomes if line.endswith(": ran")], outcomes


def test_object_store_outage_is_ridden_out_by_retries(stack: Stack):
    """The store is off the network when a run starts, and stays off until an attempt
    has failed on it (so the outage overlaps the run, however slow the start); the run
    retries, then completes."""
    with StoreOffline(stack):
        run_id = stack.trigger("a", parameters={"params": new_params()})
        stack.wait_state(run_id, {"Running"}, timeout=120)
        # The fault overlaps the run: an attempt fails on the unreachable store and a
        # retry is scheduled while it is still offline.
        stack.logs_with(run_id, "Retry 1/3", timeout=180)
        assert stack.client.read_flow_run(run_id).state.name == "Running"
    run = stack.wait_final(run_id, timeout=300)
    assert run.state.is_completed(), run.state.message
    assert_remote_sound(stack)
    assert stack.run_deployment("a").state.is_completed()  # and the next run is fine


def test_object_store_outage_during_dvc_push_is_retried_and_nothing_is_lost(stack: Stack):
    params = new_params()
    run_id = stack.trigger("a", parameters={"params": params})
    container = stack.flow_container(run_id)
    wait_for_process(container, "dvc push", timeout=240)
    with StoreOffline(stack):
        # The fault overlaps the push: an attempt fails on the unreachable store. The
        # attempt gives up file by file (each after botocore's connect retries), so its
        # failure takes longer the more run-cache entries the suite has made (sweeps: more
        # than 2 min in a CI run): a deadline with room.
        stack.logs_with(run_id, "is unreachable", timeout=600)
        assert stack.client.read_flow_run(run_id).state.name == "Running"
    run = stack.wait_final(run_id, timeout=600)
    assert run.state.is_completed(), run.state.message
    logs = stack.logs_with(run_id, "Retry")
    assert any("dvc push" in line and "is unreachable" in line for line in logs), logs
    assert_remote_sound(stack)
    assert_outputs_restorable(stack, params)


def test_permanent_store_outage_fails_the_run_naming_the_remote(stack: Stack):
    before = assert_remote_sound(stack)
    with StoreOffline(stack):
        run = stack.run_deployment("a", parameters={"params": new_params()}, timeout=900)
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
        # A file of the clone that is not a params file: dvc.yaml has none of the params.
        ({"params_file": "dvc.yaml"}, "dvc.yaml: split is missing"),
        ({"params_file": "no-such-params.yaml"}, "no-such-params.yaml"),
    ],
)
def test_bad_parameters_fail_fast_with_a_one_line_reason(stack: Stack, parameters, reason):
    before = assert_remote_sound(stack)
    run = stack.run_deployment("b", parameters=parameters)
    assert run.state.is_failed()
    message = run.state.message or ""
    assert reason in message and "\n" not in message.strip(), message
    # Never retried: the flow ran once, and no task of it more than once.
    assert run.run_count == 1
    tasks = stack.client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
    )
    assert all(task.run_count <= 1 for task in tasks), [(t.name, t.run_count) for t in tasks]
    after = assert_remote_sound(stack)
    assert set(before) <= set(after)  # nothing in the remote was removed


def test_two_runs_of_one_deployment_never_overlap(stack: Stack):
    ids = [stack.trigger("b", parameters={"params": new_params()}) for _ in range(2)]
    runs = [stack.wait_final(run_id, timeout=400) for run_id in ids]
    assert all(run.state.is_completed() for run in runs), [r.state for r in runs]
    first, second = sorted(runs, key=lambda run: run.start_time)
    assert first.end_time <= second.start_time  # concurrency_limit 1: one at a time


def test_server_restart_mid_run_keeps_the_runs_slot_and_ends_completed(stack: Stack):
    """A server restart spanning a lease renewal: the run's concurrency lease is on the
    server's volume, so the run renews it after the restart, completes, and frees its slot.

    The run's container is paused across the restart, so the run is certainly in flight
    (Running) when the server goes and when it is back; then the lease is renewed as the
    engine does every 225 s (the same API call; the engine's own period is too long for a
    test)."""
    history = [run_id for runs in stack.runs.values() for run_id in runs]
    run_id = stack.trigger("a", parameters={"params": new_params()})
    run = stack.wait_state(run_id, {"Running"}, timeout=120)
    lease = run.state.state_details.deployment_concurrency_lease_id
    assert lease, "the run holds a deployment concurrency lease"
    with Paused(stack.flow_container(run_id)):
        stack.compose("restart", "prefect-server")
        stack.compose("up", "-d", "--wait", "--no-build", "prefect-server", "gateway")
        assert stack.client.read_flow_run(run_id).state.name == "Running"
        response = stack.client.renew_concurrency_lease(lease_id=lease, lease_duration=300)
        assert response.status_code == 204  # the lease survived the restart
    run = stack.wait_final(run_id, timeout=300)
    assert run.state.is_completed(), run.state.message
    assert all(stack.client.read_flow_run(old).state for old in history)  # history kept
    # The slot is free: the next run of the deployment starts at once and completes.
    assert stack.run_deployment("a").state.is_completed()


def test_worker_killed_mid_run_then_restarted(stack: Stack):
    run_id = stack.trigger("a", parameters={"params": new_params()})
    stack.wait_state(run_id, {"Running"}, timeout=120)
    container = stack.flow_container(run_id)
    with Paused(container):  # in flight when the worker dies, and after
        stack.compose("kill", "worker")
        assert stack.client.read_flow_run(run_id).state.name == "Running"
    run = stack.wait_final(run_id, timeout=300)  # the flow container reports by itself
    assert run.state.is_completed(), run.state.message
    stack.compose("up", "-d", "--wait", "--no-build", "worker")
    assert stack.run_deployment("a").state.is_completed()  # slot free, worker back


def heartbeats(stack: Stack, run_id: UUID) -> int:
    """How many heartbeat events the server has received from a flow run."""
    page = stack.client.read_events(
        filter=EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        ),
        limit=1,
    )
    return page.total


def test_run_orphaned_by_worker_and_container_death_is_crashed_by_heartbeats(stack: Stack):
    """Worker and flow container both die: nobody can report the run's end. The
    zombie-run automation must mark it Crashed (missed heartbeats) and free the slot."""
    run_id = stack.trigger("a", parameters={"params": new_params()})
    stack.wait_state(run_id, {"Running"}, timeout=120)
    poll(lambda: heartbeats(stack, run_id) or None, 60, "the run's first heartbeat", every=1)
    stack.compose("kill", "worker")
    docker("kill", stack.flow_container(run_id))
    run = stack.wait_state(run_id, {"Crashed"}, timeout=300)
    assert "heartbeat" in (run.state.message or "").lower(), run.state.message
    stack.compose("up", "-d", "--wait", "--no-build", "worker")
    assert stack.run_deployment("a").state.is_completed()  # the concurrency slot is free


def test_run_stuck_in_pending_is_crashed_and_frees_its_slot(stack: Stack, webhook: WebhookReceiver):
    """Issue 18: a run the worker submitted whose container never starts the flow stays
    Pending forever, holding its slot. Here the worker dies while submitting it (the
    Docker proxy, paused, holds its create call); the pending-run automation must mark
    the run Crashed within its bound (MLTOY_PENDING_SECONDS: 90 s in this stack), and a
    run queued behind it must then start, long before the slot's lease (900 s) runs out."""
    bound = int(stack.env["MLTOY_PENDING_SECONDS"])
    proxy = stack.compose("ps", "-q", "docker-proxy").stdout.strip()
    with Paused(proxy):
        stuck = stack.trigger("a")
        pending = stack.wait_state(stuck, {"Pending", "Submitting"}, timeout=180)
        queued = stack.trigger("a")
        stack.compose("kill", "worker")
    # (a long pause can leave the proxy marked unhealthy for a while: the worker waits)
    poll(lambda: health(proxy) == "healthy" or None, 120, "the Docker proxy to be healthy")
    stack.compose("up", "-d", "--wait", "--no-build", "worker")
    run = stack.wait_state(stuck, {"Crashed"}, timeout=bound + 120)
    assert f"Pending for {bound}s" in (run.state.message or ""), run.state.message
    assert run.infrastructure_pid is None  # no container ever ran it
    states = stack.client.read_flow_run_states(stuck)
    pending_since = min(s.timestamp for s in states if s.type.value == "PENDING")
    crashed_at = run.state.timestamp
    assert bound <= (crashed_at - pending_since).total_seconds() < bound + 60
    assert pending.state.type.value == "PENDING"
    # ...and notified as a crash, once, with the automation's reason.
    message = fields(webhook.wait_for(stuck, 60)["json"]["body"])
    assert message["state"] == "Crashed" and f"Pending for {bound}s" in message["reason"]
    assert len(webhook.about(stuck)) == 1
    started = stack.wait_state(queued, {"Running", "Completed"}, timeout=120)
    assert (started.start_time - crashed_at).total_seconds() < 90  # not the lease's 900 s
    assert stack.wait_final(queued).state.is_completed()


def test_server_health_follows_its_database(stack: Stack):
    """The server's healthcheck asks /api/ready, which checks the database: with
    PostgreSQL stopped it fails (a liveness probe would still pass), and passes again
    once the database is back."""
    server = stack.compose("ps", "-q", "prefect-server").stdout.strip()
    test = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", server))
    assert test[0] == "CMD"
    check = ["docker", "exec", server, *test[1:]]
    assert subprocess.run(check, capture_output=True).returncode == 0
    stack.compose("stop", "postgres")
    try:
        assert subprocess.run(check, capture_output=True).returncode != 0
    finally:
        stack.compose("up", "-d", "--wait", "--no-build", "postgres", "prefect-server")
    poll(
        lambda: subprocess.run(check, capture_output=True).returncode == 0 or None,
        120,
        "the server to be ready again",
    )


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
