from datetime import timedelta

from prefect.client.schemas.objects import StateType

from deploy.automations import (
    NOTIFY_BODY,
    NOTIFY_NAME,
    NOTIFY_SUBJECT,
    PENDING_NAME,
    ZOMBIE_NAME,
    notify_automation,
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


def test_failed_crashed_and_timed_out_runs_of_the_bundle_notify_once():
    automation = notify_automation("00000000-0000-0000-0000-000000000001")
    assert automation.name == NOTIFY_NAME
    trigger = automation.trigger
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.expect == {
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.TimedOut",
    }
    assert not {"prefect.flow-run.Completed", "prefect.flow-run.Cancelled"} & trigger.expect
    # Matched by the deployments' tag (their runs inherit it), not by deployment ids.
    assert trigger.match_related.root == {
        "prefect.resource.role": "tag",
        "prefect.resource.id": "prefect.tag.mltoy",
    }
    assert trigger.for_each == {"prefect.resource.id"}
    (action,) = automation.actions
    assert str(action.block_document_id).endswith("1")


def _render(template: str, **context: object) -> str:
    from prefect.server.events.jinja_filters import all_filters
    from prefect.server.utilities.user_templates import (
        register_user_template_filters,
        render_user_template_sync,
        validate_user_template,
    )

    validate_user_template(template)  # what the server checks when the automation is made
    register_user_template_filters(all_filters)
    return render_user_template_sync(template, context)


def test_the_message_names_flow_deployment_run_state_one_line_reason_and_link():
    from prefect.server.schemas.core import Deployment, Flow, FlowRun
    from prefect.server.schemas.states import Failed
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    flow = Flow(name="option-a-dvc-repro")
    deployment = Deployment(name="option-a", flow_id=flow.id)
    state = Failed(message="Flow run encountered an exception: ValueError: train.C = -1\nTraceback")
    run = FlowRun(name="abc1234 change C", flow_id=flow.id, state=state)
    context = {"flow": flow, "deployment": deployment, "flow_run": run}
    with temporary_settings({PREFECT_UI_URL: "http://127.0.0.1:4200"}):
        body = _render(NOTIFY_BODY, **context)
        subject = _render(NOTIFY_SUBJECT, **context)
    fields = dict(line.split(": ", 1) for line in body.splitlines()[1:])
    assert fields == {
        "flow": "option-a-dvc-repro",
        "deployment": "option-a",
        "run": f"abc1234 change C ({run.id})",
        "state": "Failed",
        "reason": "Flow run encountered an exception: ValueError: train.C = -1",
        "link": f"http://127.0.0.1:4200/runs/flow-run/{run.id}",
    }
    assert subject == "mltoy: option-a-dvc-repro/option-a run abc1234 change C Failed"


def test_a_run_without_a_message_or_deployment_still_renders():
    from prefect.server.schemas.core import Flow, FlowRun
    from prefect.server.schemas.states import Crashed

    flow = Flow(name="f")
    run = FlowRun(name="r", flow_id=flow.id, state=Crashed(message=None))
    body = _render(NOTIFY_BODY, flow=flow, deployment=None, flow_run=run)
    assert "deployment: none" in body and "reason: no message" in body
