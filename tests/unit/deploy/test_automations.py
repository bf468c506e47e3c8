from datetime import timedelta

from prefect.client.schemas.objects import StateType

from deploy.automations import NAME, zombie_automation


def test_zombie_runs_are_crashed_after_three_missed_heartbeats():
    automation = zombie_automation(heartbeat_seconds=30)
    assert automation.name == NAME
    trigger = automation.trigger
    assert trigger.posture == "Proactive"
    assert trigger.within == timedelta(seconds=90)
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.Completed", "prefect.flow-run.Crashed"} <= trigger.expect
    (action,) = automation.actions
    assert action.state == StateType.CRASHED
