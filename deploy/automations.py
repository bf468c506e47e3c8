"""Server-side policies a self-hosted Prefect lacks out of the box: runs that never end.

- Zombie runs: a flow run whose container dies (OOM, host reboot, `docker kill`) cannot
  report its own end: without a policy it stays Running forever and holds its
  deployment's concurrency slot. Flow containers send a heartbeat every
  PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (30 in prefect.yaml); an automation marks a
  run Crashed when neither a heartbeat nor a final state arrives within three heartbeats.
- Stuck Pending runs: a run the worker submitted whose container never starts the flow
  (the worker died while submitting, the container exited before the engine ran)
  stays Pending forever, holding the slot until its lease expires, and never ends. An
  automation marks a run Crashed when it has not left Pending within
  MLTOY_PENDING_SECONDS (docs/reliability.md: chosen from measured start times).

Crashed is a final state: the run's concurrency slot is freed at once. Idempotent:
re-running this replaces each automation with the current definition.
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

ZOMBIE_NAME = "mltoy: crash zombie flow runs"
PENDING_NAME = "mltoy: crash flow runs stuck in Pending"
HEARTBEAT_SECONDS = int(os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30"))
MISSED_HEARTBEATS = 3
# The longest Pending -> Running measured here: 233 s, 16 runs started at once on 2 busy
# cores (docs/reliability.md); 600 s leaves room, and stays under the server's Pending
# lease (PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION, 900 s in
# compose.yaml), so the slot is freed by this, not by the lease running out.
PENDING_SECONDS = int(os.environ.get("MLTOY_PENDING_SECONDS", "600"))
FINAL = ("Completed", "Failed", "Cancelled", "Crashed")
# Every state a Pending run can move to (event names are state names).
LEFT_PENDING = (
    "Running",
    "Retrying",
    "Cancelling",
    "Scheduled",
    "AwaitingRetry",
    "AwaitingConcurrencySlot",
    "Late",
    "Paused",
    "Suspended",
    *FINAL,
)
FLOW_RUNS = ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]})


def _crash_runs(
    name: str, description: str, after: str, expect: set[str], seconds: int, message: str
) -> Automation:
    """A proactive automation: a flow run with an `after` event and none of `expect`
    within `seconds` is marked Crashed (a final state: its concurrency slot is freed)."""
    return Automation(
        name=name,
        description=description,
        trigger=EventTrigger(
            after={after},
            expect=expect,
            match=FLOW_RUNS,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=message)],
    )


def zombie_automation(heartbeat_seconds: int = HEARTBEAT_SECONDS) -> Automation:
    window = MISSED_HEARTBEATS * heartbeat_seconds
    return _crash_runs(
        ZOMBIE_NAME,
        f"Marks a flow run Crashed after {MISSED_HEARTBEATS} missed heartbeats "
        f"({window}s), freeing its concurrency slot.",
        after="prefect.flow-run.heartbeat",
        expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in FINAL)},
        seconds=window,
        message=f"No heartbeat for {window}s: the flow-run container is gone "
        "(marked by the zombie-run automation).",
    )


def pending_automation(pending_seconds: int = PENDING_SECONDS) -> Automation:
    return _crash_runs(
        PENDING_NAME,
        f"Marks a flow run Crashed when it has not left Pending within "
        f"{pending_seconds}s, freeing its concurrency slot.",
        after="prefect.flow-run.Pending",
        expect={f"prefect.flow-run.{state}" for state in LEFT_PENDING},
        seconds=pending_seconds,
        message=f"Pending for {pending_seconds}s: its container never started the flow "
        "(the worker or the container failed while submitting it); marked by the "
        "pending-run automation.",
    )


def main() -> int:
    for automation in (zombie_automation(), pending_automation()):
        with contextlib.suppress(ValueError):  # ValueError: not there yet
            Automation.read(name=automation.name).delete()
        created = automation.create()
        print(f"automation '{created.name}' ({created.id}) in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
