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

- Failure notifications: a run of the bundle's deployments (tag `mltoy`, which its runs
  inherit, so it survives redeploys) that ends Failed, Crashed or TimedOut sends one
  message through the notification block made from MLTOY_NOTIFY_URL
  (deploy/notifications.py): flow, deployment, run, state, the state's one-line reason
  and the run's link in the UI. Completed (or Cancelled) runs never notify. Without
  MLTOY_NOTIFY_URL there is no such automation (an earlier one is removed).

Crashed is a final state: the run's concurrency slot is freed at once. Idempotent:
re-running this replaces each automation with the current definition.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from deploy import notifications

ZOMBIE_NAME = "mltoy: crash zombie flow runs"
PENDING_NAME = "mltoy: crash flow runs stuck in Pending"
NOTIFY_NAME = "mltoy: notify failed flow runs"
# The tag every deployment of prefect.yaml has; its flow runs inherit it.
BUNDLE_TAG = "mltoy"
NOTIFY_STATES = ("Failed", "Crashed", "TimedOut")
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


# The message (Jinja, rendered by the server with the run, its flow and deployment). The
# state's message is cut to its first line: the reason, not a traceback.
NOTIFY_SUBJECT = (
    "mltoy: {{ flow.name }}{% if deployment %}/{{ deployment.name }}{% endif %}"
    " run {{ flow_run.name }} {{ flow_run.state.name }}"
)
NOTIFY_BODY = """\
Flow run {{ flow_run.name }} ended {{ flow_run.state.name }}.
flow: {{ flow.name }}
deployment: {% if deployment %}{{ deployment.name }}{% else %}none{% endif %}
run: {{ flow_run.name }} ({{ flow_run.id }})
state: {{ flow_run.state.name }}
reason: {{ (flow_run.state.message or "no message").strip().split("\\n")[0] | truncate(300) }}
link: {{ flow_run|ui_url }}
"""


def notify_automation(block_document_id: str) -> Automation:
    return Automation(
        name=NOTIFY_NAME,
        description=f"Sends a message (block '{notifications.BLOCK_NAME}') when a flow run "
        f"tagged '{BUNDLE_TAG}' ends {', '.join(NOTIFY_STATES)}.",
        trigger=EventTrigger(
            expect={f"prefect.flow-run.{state}" for state in NOTIFY_STATES},
            match=FLOW_RUNS,
            match_related=ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{BUNDLE_TAG}"}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id, subject=NOTIFY_SUBJECT, body=NOTIFY_BODY
            )
        ],
    )


def replace(automation: Automation) -> None:
    """Delete the automation of that name (every one: never two), then create it."""
    remove(automation.name)
    created = automation.create()
    print(f"automation '{created.name}' ({created.id}) in place")


def remove(name: str) -> None:
    while True:
        try:
            Automation.read(name=name).delete()
        except ValueError:  # not there (any more)
            return


def main() -> int:
    for automation in (zombie_automation(), pending_automation()):
        replace(automation)
    url = notifications.configured_url()
    if not url:
        remove(NOTIFY_NAME)
        print("failure notifications off (set MLTOY_NOTIFY_URL in .env to turn them on)")
        return 0
    try:
        block = notifications.notification_block(url)
    except notifications.NotifyUrlError as exc:
        print(f"deploy: error: {exc}", file=sys.stderr)
        return 2
    replace(notify_automation(notifications.save(block)))
    print(f"failure notifications: {notifications.describe(block)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
