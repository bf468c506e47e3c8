"""The Prefect UI in a real browser (issue 13.3): Playwright driving Debian's Chromium
(scripts/install-chromium.sh; Playwright's own browser download is never used) against
the suite's stack, through the gateway and its login, as a person uses it.

Selectors follow the UI Prefect 3.8.8 serves by default (the React UI under /v2: the
login field's placeholder `admin:pass`, the deployment page's Run menu with Quick run and
Custom run, the run page's tabs). Each step is screenshotted; the screenshots are kept
in .e2e-logs/ui/ beside the container logs when a test fails. The tests run in file
order: the Custom run compares with the Quick run before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, poll
from tests.support import REPO_ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

SHOTS = REPO_ROOT / ".e2e-logs" / "ui"
DOCS_SHOT = REPO_ROOT / "docs" / "img" / "run-page-artifacts.png"
TIMEOUT_MS = 30_000  # one UI step (pages load slowly on a busy machine)
RUN_TIMEOUT = 300  # a run, from the click to Completed
FLOWS = {"a": "option-a-dvc-repro", "b": "option-b-stage-dag"}


def chromium() -> str:
    """The browser the project's setup installs; the tests skip, saying so, without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip(
            "UI tests need a Chromium on PATH: scripts/install-chromium.sh installs "
            "Debian's as root (e2e-prepare runs it); elsewhere install it yourself"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses root
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=args)
        yield launched
        launched.close()


class Steps:
    """Screenshots of a test's steps, numbered; kept only when the test fails."""

    def __init__(self, page, directory: Path):
        self.page, self.directory, self.count = page, directory, 0

    def shot(self, name: str, full_page: bool = False) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def page(browser, stack: Stack, request: pytest.FixtureRequest, tmp_path: Path):
    base = f"http://127.0.0.1:{stack.env['PREFECT_PORT']}"
    context = browser.new_context(base_url=base, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.steps = Steps(page, tmp_path)
    failed_before = request.session.testsfailed
    try:
        yield page
    finally:
        # A dead page: the steps before it are still worth keeping.
        with contextlib.suppress(Exception):
            page.steps.shot("last")
        context.close()
        if request.session.testsfailed > failed_before:
            kept = SHOTS / request.node.name
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(tmp_path, kept)


def log_in(page, stack: Stack) -> None:
    page.goto("/")
    page.get_by_placeholder("admin:pass").fill(stack.env["PREFECT_AUTH_STRING"])
    page.get_by_role("button", name="Login").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_log_in_refuses_a_wrong_password_then_lets_the_right_one_in(page, stack: Stack):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    field = page.get_by_placeholder("admin:pass")
    user = stack.env["PREFECT_AUTH_STRING"].split(":", 1)[0]
    # One failed attempt: far under the gateway's limit (test_web checks the lockout).
    field.fill(f"{user}:not-the-password")
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_text(re.compile("invalid credentials", re.I))).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))
    page.steps.shot("wrong-password-refused")
    field.fill(stack.env["PREFECT_AUTH_STRING"])
    page.get_by_role("button", name="Login").click()
    expect(page).to_have_url(re.compile(r"/dashboard"))
    page.steps.shot("logged-in")


def test_both_deployments_are_listed_with_their_schedules(page, stack: Stack):
    log_in(page, stack)
    page.goto("/v2/deployments")
    for option in ("a", "b"):
        expect(page.get_by_text(f"option-{option}", exact=True).first).to_be_visible()
    page.steps.shot("deployments")
    # Each deployment's page shows its schedule (prefect.yaml: hourly, at :00 and :30).
    for option, minute in (("a", "0"), ("b", "30")):
        page.goto(f"/v2/deployments/deployment/{stack.deployment_id(option)}")
        sidebar = page.get_by_role("complementary")
        expect(sidebar.get_by_text("Schedules")).to_be_visible()
        expect(sidebar.get_by_text(schedule_text(minute)).first).to_be_visible()
        page.steps.shot(f"deployment-{option}-schedule")


def schedule_text(minute: str) -> re.Pattern[str]:
    """How the UI words prefect.yaml's cron `M * * * *` (cronstrue)."""
    if minute == "0":
        return re.compile(r"every hour|0 \* \* \* \*", re.I)
    return re.compile(rf"at {minute} minutes past the hour|{minute} \* \* \* \*", re.I)


def newest_run(stack: Stack, option: str, after: set) -> object | None:
    runs = stack.client.read_flow_runs(deployment_filter=deployment_filter(stack, option), limit=20)
    fresh = [run for run in runs if run.id not in after]
    return fresh[0] if fresh else None


def deployment_filter(stack: Stack, option: str):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[stack.deployment_id(option)]))


def run_ids(stack: Stack, option: str) -> set:
    runs = stack.client.read_flow_runs(deployment_filter=deployment_filter(stack, option))
    return {run.id for run in runs}


def follow_run_to_completed(page, stack: Stack, option: str, before: set):
    """The run the click created: open its page and watch it reach Completed."""
    run = poll(lambda: newest_run(stack, option, before), 30, "the run the UI created", 1)
    stack.runs.setdefault(option, []).append(run.id)
    page.goto(f"/v2/runs/flow-run/{run.id}")
    expect(page.get_by_text(run.name, exact=True).first).to_be_visible()
    page.steps.shot("run-page")
    final = stack.wait_final(run.id, RUN_TIMEOUT)
    page.reload()
    badge = page.locator('[class*="bg-state-"]').filter(has_text=final.state.name).first
    expect(badge).to_be_visible()
    page.steps.shot(f"run-{final.state.name.lower()}")
    assert final.state.is_completed(), final.state.message
    return final


def test_quick_run_from_the_deployment_page_completes_with_its_artifacts(page, stack: Stack):
    log_in(page, stack)
    before = run_ids(stack, "a")
    previous = stack.runs.get("a", [])
    page.goto(f"/v2/deployments/deployment/{stack.deployment_id('a')}")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Quick run").click()
    expect(page.get_by_text("Flow run created")).to_be_visible()
    page.steps.shot("quick-run-created")
    run = follow_run_to_completed(page, stack, "a", before)

    page.get_by_role("tab", name="Artifacts").click()
    for key in ("mltoy-metrics", "mltoy-confusion-matrix", "mltoy-model"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    # The confusion matrix as a picture, rendered from its data URL.
    image = page.get_by_role("img", name="Confusion matrix")
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 100
    page.steps.shot("artifacts", full_page=True)
    docs_shot(page)

    # The metrics, as the table shows them: accuracy and its change since the last run.
    table = stack.artifact(run.id, "mltoy-metrics")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    metrics = {row["metric"]: row for row in rows}
    page.get_by_text("mltoy-metrics", exact=True).first.click()
    display = page.get_by_test_id("table-display")
    expect(display.get_by_role("columnheader", name="change")).to_be_visible()
    expect(display.get_by_role("cell", name="accuracy", exact=True)).to_be_visible()
    expect(
        display.get_by_role("cell", name=str(metrics["accuracy"]["value"]), exact=True).first
    ).to_be_visible()
    page.steps.shot("metrics-artifact")
    if previous:  # an earlier run of option A: same code and params, no change
        assert metrics["accuracy"]["previous"] == metrics["accuracy"]["value"]
        assert metrics["accuracy"]["change"] == "0"


def docs_shot(page) -> None:
    """The README's picture of a run page with its artifacts, made by this test; written
    into docs/img/ when MLTOY_DOCS_SCREENSHOTS=1 (otherwise kept in .e2e-logs/ui/)."""
    docs = os.environ.get("MLTOY_DOCS_SCREENSHOTS") == "1"
    target = DOCS_SHOT if docs else SHOTS / DOCS_SHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))


def test_custom_run_with_a_changed_train_c_reruns_from_train(page, stack: Stack):
    log_in(page, stack)
    before = run_ids(stack, "a")
    page.goto(f"/v2/deployments/deployment/{stack.deployment_id('a')}")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Custom run").click()
    expect(page).to_have_url(re.compile(r"/run"))
    set_json_parameter(page, "params", {"train": {"C": 0.5}})
    page.steps.shot("custom-run-form")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("Flow run created")).to_be_visible()
    run = follow_run_to_completed(page, stack, "a", before)
    assert run.parameters["params"] == {"train": {"C": 0.5}}

    # The run's stages, as its log tells them in the UI.
    page.get_by_role("tab", name="Logs").click()
    for line in ("stage prepare: skipped", "stage train: ran", "stage evaluate: ran"):
        expect(page.get_by_text(line).first).to_be_visible()
    page.steps.shot("custom-run-stages", full_page=True)


def set_json_parameter(page, name: str, value: object) -> None:
    """Type a dict parameter into the Custom run form's JSON editor for `name`."""
    editor = page.get_by_label(name).locator(".cm-content").first
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps(value))
