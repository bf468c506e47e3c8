from datetime import timedelta

from prefect.client.schemas.objects import StateType

from deploy.automations import (
    PENDING_NAME,
    ZOMBIE_NAME,
    pending_automation,
    zombie_automation,
)


def test_zombie_runs_are_crashed_after_three_missed_heartbeats():
    automation = zombie_automation(heartbeat_seconds=30)
    assert automation.name == ZOMBIE_NAME
    trigger = automation.trigger
    assert trigger.posture == "Proactive"
    assert trigger.within == timedelta(seconds=90)
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.Completed", "prefect.flow-run.Crashed"} <= trigger.expect
    (action,) = automation.actions
    assert action.state == StateType.CRASHED


def test_runs_stuck_in_pending_are_crashed_after_the_bound():
    automation = pending_automation(pending_seconds=120)
    assert automation.name == PENDING_NAME
    trigger = automation.trigger
    assert trigger.posture == "Proactive"
    assert trigger.within == timedelta(seconds=120)
    assert trigger.after == {"prefect.flow-run.Pending"}
    # Leaving Pending any way closes the window; the worker's own "Submitting" (still a
    # Pending state) does not.
    assert {"prefect.flow-run.Running", "prefect.flow-run.Crashed"} <= trigger.expect
    assert {"prefect.flow-run.AwaitingConcurrencySlot"} <= trigger.expect
    assert not {"prefect.flow-run.Pending", "prefect.flow-run.Submitting"} & trigger.expect
    assert trigger.for_each == {"prefect.resource.id"}
    (action,) = automation.actions
    assert action.state == StateType.CRASHED
    assert "Pending for 120s" in action.message
