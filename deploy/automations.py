"""Server-side policies a self-hosted Prefect lacks out of the box: zombie-run detection.

A flow run whose container dies (OOM, host reboot, `docker kill`) cannot report its own
end: without this, it stays Running forever and holds its deployment's concurrency slot.
Flow containers send a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (30 in
prefect.yaml); this automation marks a run Crashed when neither a heartbeat nor a final
state arrives within three heartbeats, which frees the slot. Idempotent: re-running it
replaces the automation with the current definition.
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

NAME = "mltoy: crash zombie flow runs"
HEARTBEAT_SECONDS = int(os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30"))
MISSED_HEARTBEATS = 3


def zombie_automation(heartbeat_seconds: int = HEARTBEAT_SECONDS) -> Automation:
    return Automation(
        name=NAME,
        description=(
            f"Marks a flow run Crashed after {MISSED_HEARTBEATS} missed heartbeats "
            f"({MISSED_HEARTBEATS * heartbeat_seconds}s), freeing its concurrency slot."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {MISSED_HEARTBEATS * heartbeat_seconds}s: "
                "the flow-run container is gone (marked by the zombie-run automation).",
            )
        ],
    )


def main() -> int:
    with contextlib.suppress(ValueError):  # ValueError: not there yet
        Automation.read(name=NAME).delete()
    created = zombie_automation().create()
    print(f"automation '{created.name}' ({created.id}) in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
