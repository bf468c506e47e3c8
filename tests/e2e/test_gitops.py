"""The GitOps loop, as a developer drives it from the host: Git is the source of truth.

Clone the stack's repository over 127.0.0.1, commit, push: the push runs that commit, the
run reports what changed, its results come back as `runs/<short-sha>` and `dvc pull`
restores them. The tests share the module's developer clone and its push of a new
`train.C` (fixtures), and each also runs alone; every push that breaks main is reverted
by the test that made it, so the tests and suites after it run a sound main.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.states import Scheduled

from harness import make_in_checkout
from tests.e2e.developer import Developer
from tests.e2e.stack import STAGES, Stack, poll, read_env_file, stage_outcomes

REPORT = "mltoy-run-report"
# A run may wait for the deployment's concurrency slot behind the run of the push before
# it (concurrency_limit 1): its deadline covers two runs.
QUEUED = 600
SKIPPED = {"skipped", "restored"}
NEW_C = 0.37


@pytest.fixture(scope="module")
def image_before_pushes(stack: Stack) -> str:
    return image_id(stack)


@pytest.fixture(scope="module")
def dev(
    stack: Stack, image_before_pushes: str, tmp_path_factory: pytest.TempPathFactory
) -> Developer:
    """The developer's clone; main's tip gets results of its own params here, so the first
    push has that baseline (earlier tests' runs with other params, e.g. test_mlflow's,
    published theirs to the same ref: the latest run of a commit wins)."""
    path = tmp_path_factory.mktemp("developer") / "mltoy"
    developer = Developer.clone(stack.project_dir, stack.env["GIT_PORT"], path)
    assert stack.run_deployment("a").state.is_completed()
    return developer


@dataclass(frozen=True)
class Push:
    """The push of `train.C = NEW_C` to main, and what it started."""

    before_c: float  # train.C in main's params before it
    sha: str
    pushed_at: datetime
    output: str  # what `git push` printed (the server's hook speaks on stderr)
    started: FlowRun  # the run, once Running (or final)
    run: FlowRun  # the run, final
    report: str  # its run report ("" unless Completed)


@pytest.fixture(scope="module")
def c_push(stack: Stack, dev: Developer) -> Push:
    """`train.C = NEW_C` committed and pushed to main, its run final: tests that read it
    find it whether or not the test of the push ran first."""
    before_c = yaml.safe_load((dev.path / "params.yaml").read_text())["train"]["C"]
    sha = dev.commit(f"train: C = {NEW_C}", **{"params.yaml": dev.set_param("train.C", NEW_C)})
    pushed_at = datetime.now(UTC)
    output = dev.push("main").stderr
    run = run_of_commit(stack, sha, timeout=60)
    started = stack.wait_state(run.id, {"Running", "Completed", "Failed", "Crashed"}, 60)
    run = stack.wait_final(run.id)
    report = report_of(stack, run.id) if run.state.is_completed() else ""
    return Push(before_c, sha, pushed_at, output, started, run, report)


def image_id(stack: Stack) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", stack.env["MLTOY_IMAGE"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def runs_of(stack: Stack) -> list[FlowRun]:
    ids = [stack.deployment_id(option) for option in ("a", "b")]
    return stack.client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)), limit=200
    )


def run_of_commit(stack: Stack, sha: str, timeout: float = 60) -> FlowRun:
    """The run a push of `sha` started (its `commit` parameter), once it exists."""

    def started() -> FlowRun | None:
        found = [run for run in runs_of(stack) if run.parameters.get("commit") == sha]
        return found[0] if found else None

    run = poll(started, timeout, f"a flow run of {sha[:7]}", every=1)
    stack.runs.setdefault("a", []).append(run.id)
    return run


def report_of(stack: Stack, run_id: UUID) -> str:
    return stack.artifact(run_id, REPORT).data


def commit_in(report: str) -> str:
    return re.search(r"- commit: `([0-9a-f]{40})`", report).group(1)


def test_make_up_alone_brought_the_stack_up_from_a_fresh_clone(stack: Stack):
    """The suite's stack came up with `make up` in a fresh clone that had no .env."""
    printed = stack.up_output.stdout
    assert "make-env: wrote" in printed and "git-seed: seeded" in printed, printed[-3000:]
    assert "Prefect UI: http://127.0.0.1:" in printed
    env_file = stack.project_dir / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = read_env_file(env_file)
    secrets = [
        env[k]
        for k in ("S3_ROOT_PASSWORD", "POSTGRES_PASSWORD", "GIT_PASSWORD", "GIT_FLOW_PASSWORD")
    ]
    assert all(len(secret) >= 24 for secret in secrets) and len(set(secrets)) == len(secrets)
    assert env["DOCKER_GID"] == str(os.stat("/var/run/docker.sock").st_gid)
    # The stack's Git server holds the clone's HEAD as main, and the deployments came from it.
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=stack.project_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (
        f"git-seed: seeded http://127.0.0.1:{env['GIT_PORT']}/mltoy.git: main = {head[:7]}"
        in printed
    )
    for option in ("a", "b"):
        assert stack.client.read_deployment(stack.deployment_id(option)).pull_steps


def test_a_push_to_main_runs_that_commit(stack: Stack, c_push: Push):
    sha, run, report = c_push.sha, c_push.run, c_push.report
    assert "event sent to Prefect" in c_push.output
    assert c_push.started.start_time - c_push.pushed_at < timedelta(seconds=60)  # within 60 s
    assert run.state.is_completed(), run.state.message
    # The UI's run list reads as a commit log.
    assert run.name.startswith(f"{sha[:7]} train: C = 0.37"), run.name
    assert f"commit:{sha[:7]}" in run.tags
    outcomes = stage_outcomes(stack.logs_with(run.id, "stage evaluate: "))
    assert outcomes["train"] == outcomes["evaluate"] == "ran"
    assert outcomes["prepare"] in SKIPPED, outcomes
    assert commit_in(report) == sha
    assert f"## {sha[:7]} train: C = 0.37" in report  # the commit's subject
    assert "E2E Developer" in report
    # dvc params diff and dvc metrics diff against the parent's results.
    changed = rf"\| params.yaml \| train.C \| {c_push.before_c} \| {NEW_C} \|"
    assert re.search(changed, report), report
    assert re.search(
        r"\| reports/metrics.json \| accuracy \| [0-9.]+ \| [0-9.]+ \| -?[0-9.e-]+ \|", report
    ), report
    assert "| prepare | skipped: inputs unchanged since" in report, report
    assert "| train | ran: changed since" in report and "train.C" in report


def test_the_results_ref_gives_the_runs_outputs_with_dvc_pull(
    stack: Stack, dev: Developer, c_push: Push, tmp_path: Path
):
    sha = c_push.sha
    ref = f"refs/heads/runs/{sha[:7]}"
    assert ref in dev.remote_refs()
    # The developer's DVC remote: the stack's S3 API on 127.0.0.1, the developer key.
    out = subprocess.run(
        make_in_checkout("remote-config"),
        cwd=stack.project_dir,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    config = stack.project_dir / ".dvc/config.local"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert f"127.0.0.1:{stack.env['S3_PORT']}" in config.read_text()
    # A fresh clone of the results ref, and `dvc pull` there.
    fresh = tmp_path / "results"
    dev.git("clone", "--quiet", "--branch", f"runs/{sha[:7]}", dev.url, str(fresh))
    assert (
        subprocess.run(
            ["git", "rev-parse", "HEAD^"], cwd=fresh, capture_output=True, text=True
        ).stdout.strip()
        == sha
    )  # results on top of the commit
    shutil.copy2(config, fresh / ".dvc/config.local")
    pulled = subprocess.run(
        [sys.executable, "-m", "dvc", "pull"], cwd=fresh, capture_output=True, text=True
    )
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    lock = yaml.safe_load((fresh / "dvc.lock").read_text())["stages"]
    (model,) = lock["train"]["outs"]
    assert model["path"] == "models/model.joblib"
    assert hashlib.md5((fresh / model["path"]).read_bytes()).hexdigest() == model["md5"]
    assert lock["train"]["params"]["params.yaml"]["train"]["C"] == NEW_C
    metrics = json.loads((fresh / "reports/metrics.json").read_text())
    assert metrics == stack.artifact_metrics(c_push.run.id)
    # The run's report named the very model and raw data that `dvc pull` brought back.
    (raw,) = yaml.safe_load((fresh / "data/raw/iris.csv.dvc").read_text())["outs"]
    for path, md5 in (("models/model.joblib", model["md5"]), ("data/raw/iris.csv", raw["md5"])):
        assert f"| {path} | {md5} |" in c_push.report, c_push.report
    # The developer's own data goes the other way: `dvc push` with the same key, and
    # `dvc status -c` then finds the checkout and the remote in sync.
    (fresh / "data/notes.txt").write_text(f"a developer's file, {sha}\n")
    for argv in (("add", "data/notes.txt"), ("push",), ("status", "--cloud")):
        done = subprocess.run(
            [sys.executable, "-m", "dvc", *argv], cwd=fresh, capture_output=True, text=True
        )
        assert done.returncode == 0, f"dvc {' '.join(argv)}: {done.stdout}{done.stderr}"
    assert "in sync" in done.stdout, done.stdout
    shutil.rmtree(fresh / ".dvc/cache")
    (fresh / "data/notes.txt").unlink()
    pulled = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "data/notes.txt.dvc"],
        cwd=fresh,
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (fresh / "data/notes.txt").read_text() == f"a developer's file, {sha}\n"


def test_readme_push_skips_every_stage_and_other_refs_start_nothing(stack: Stack, dev: Developer):
    before = {run.id for run in runs_of(stack)}
    # A branch, a tag, a results-like ref, then the branch deleted: none runs anything.
    dev.git("checkout", "--quiet", "-b", "feature/x")
    dev.commit("feature work", **{"params.yaml": dev.set_param("train.C", 0.5)})
    dev.push("feature/x")
    dev.git("tag", "v-e2e")
    dev.push("v-e2e")
    dev.push("feature/x:refs/heads/runs/0000000")
    dev.push(":feature/x")
    dev.git("checkout", "--quiet", "main")
    readme = (dev.path / "README.md").read_text() + "\nA line about nothing the pipeline uses.\n"
    sha = dev.commit("docs: a README line", **{"README.md": readme})
    dev.push("main")
    run = stack.wait_final(run_of_commit(stack, sha).id)
    assert run.state.is_completed(), run.state.message
    outcomes = stage_outcomes(stack.logs_with(run.id, "stage evaluate: "))
    assert set(outcomes) == set(STAGES) and set(outcomes.values()) <= SKIPPED, outcomes
    # The events of the other refs came first; none of them started a run.
    started = {r.id for r in runs_of(stack)} - before - {run.id}
    assert not started, [(r.name, r.parameters) for r in runs_of(stack) if r.id in started]


def test_a_push_runs_option_b_too_once_its_trigger_is_on(stack: Stack, dev: Developer):
    """`prefect deploy` makes each deployment's push trigger an automation, on or off as
    MLTOY_PUSH_RUNS says (deploy/deploy.sh). The default, a: option B's is there and off.
    On (what MLTOY_PUSH_RUNS=both deploys), one push runs that commit in both deployments."""
    (trigger_a,) = stack.client.read_automations_by_name("mltoy: a push to main runs option A")
    (trigger_b,) = stack.client.read_automations_by_name("mltoy: a push to main runs option B")
    assert trigger_a.enabled and not trigger_b.enabled
    stack.client.resume_automation(trigger_b.id)
    try:
        readme = (dev.path / "README.md").read_text() + "\nAnother line the pipeline ignores.\n"
        sha = dev.commit("docs: another README line", **{"README.md": readme})
        dev.push("main")
        ids = {stack.deployment_id(option): option for option in ("a", "b")}

        def both() -> dict[str, FlowRun] | None:
            found = {
                ids[run.deployment_id]: run
                for run in runs_of(stack)
                if run.parameters.get("commit") == sha
            }
            return found if len(found) == 2 else None

        started = poll(both, 60, f"runs of {sha[:7]} in option A and option B", every=1)
        for option, run in started.items():
            run = stack.wait_final(run.id, timeout=QUEUED)
            assert run.state.is_completed(), (option, run.state.message)
            assert commit_in(report_of(stack, run.id)) == sha, option
    finally:
        stack.client.pause_automation(trigger_b.id)


def test_a_push_without_credentials_is_refused(stack: Stack, dev: Developer):
    main = dev.remote_refs()["refs/heads/main"]
    dev.commit("not allowed")
    anonymous = dev.git("push", "origin", "main", check=False, helper="")
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    wrong = dev.git(
        "push",
        "origin",
        "main",
        check=False,
        helper="!f() { echo username=developer; echo password=wrong; }; f",
    )
    assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr, wrong.stderr
    # The flows' identity reads, but may push refs/heads/runs/* only.
    env = read_env_file(stack.project_dir / ".env")
    flows = f"!f() {{ echo username=mltoy-flows; echo password={env['GIT_FLOW_PASSWORD']}; }}; f"
    refused = dev.git("push", "origin", "main", check=False, helper=flows)
    assert refused.returncode != 0 and "may push refs/heads/runs/* only" in refused.stderr
    assert dev.remote_refs()["refs/heads/main"] == main
    dev.git("reset", "--quiet", "--hard", "origin/main")


def test_a_push_with_invalid_params_fails_naming_the_key_and_makes_no_results_ref(
    stack: Stack, dev: Developer
):
    sha = dev.commit("train: C = -1", **{"params.yaml": dev.set_param("train.C", -1)})
    dev.push("main")
    try:
        run = stack.wait_final(run_of_commit(stack, sha).id, timeout=QUEUED)
        assert run.state.is_failed(), run.state
        assert "train.C" in (run.state.message or ""), run.state.message
        assert f"refs/heads/runs/{sha[:7]}" not in dev.remote_refs()
    finally:
        dev.git("revert", "--no-edit", "HEAD")
        dev.push("main")


def test_a_commit_with_another_lock_file_fails_naming_the_rebuild(stack: Stack, dev: Developer):
    lock = (dev.path / "requirements.lock").read_text() + "# a dependency changed\n"
    sha = dev.commit("deps: change the lock", **{"requirements.lock": lock})
    dev.push("main")
    try:
        run = stack.wait_final(run_of_commit(stack, sha).id, timeout=QUEUED)
        assert run.state.is_failed(), run.state
        message = run.state.message or ""
        assert "requirements.lock" in message and "make up" in message, message
        assert f"refs/heads/runs/{sha[:7]}" not in dev.remote_refs()
    finally:
        dev.git("revert", "--no-edit", "HEAD")
        dev.push("main")


def test_scheduled_and_quick_runs_use_the_tip_of_main_without_a_rebuild(
    stack: Stack, dev: Developer, c_push: Push, image_before_pushes: str
):
    """The schedules' runs and Quick runs carry no commit: they clone the tip of main, so
    the params pushed earlier (train.C) are what they train, on the same image."""
    tip = dev.remote_refs()["refs/heads/main"]  # pushed by this module: its run exists
    stack.wait_final(run_of_commit(stack, tip).id, timeout=QUEUED)  # (e.g. a revert's)
    scheduled = stack.client.create_flow_run_from_deployment(
        stack.deployment_id("a"), state=Scheduled(scheduled_time=datetime.now(UTC))
    )
    quick = stack.trigger("b")
    for run_id in (scheduled.id, quick):
        run = stack.wait_final(run_id)
        assert run.state.is_completed(), run.state.message
        assert commit_in(report_of(stack, run_id)) == tip
        assert run.name.startswith(tip[:7])
    dev.git("fetch", "--quiet", "origin", f"refs/heads/runs/{tip[:7]}")
    lock = yaml.safe_load(dev.git("show", "FETCH_HEAD:dvc.lock").stdout)
    assert lock["stages"]["train"]["params"]["params.yaml"]["train"]["C"] == NEW_C
    assert image_id(stack) == image_before_pushes  # nothing was rebuilt


def test_a_custom_run_of_an_older_commit_runs_that_commit(
    stack: Stack, dev: Developer, c_push: Push
):
    """A Custom run's `commit` runs that exact commit, not the tip of main: the push of
    train.C = 0.37, now behind main, again; the same commit and data give the same model
    (by its DVC md5)."""
    sha = c_push.sha
    if dev.remote_refs()["refs/heads/main"] == sha:  # run alone: main moves past it first
        readme = (dev.path / "README.md").read_text() + "\nA line after the C push.\n"
        dev.commit("docs: a line after the C push", **{"README.md": readme})
        dev.push("main")
    assert dev.remote_refs()["refs/heads/main"] != sha
    run = stack.run_deployment("a", timeout=QUEUED, parameters={"commit": sha})
    assert run.state.is_completed(), run.state.message
    assert run.name.startswith(sha[:7]), run.name
    report = report_of(stack, run.id)
    assert commit_in(report) == sha
    model = re.search(r"\| models/model\.joblib \| ([0-9a-f]{32}) \|", c_push.report)
    assert model and f"| models/model.joblib | {model.group(1)} |" in report, report


def test_make_git_remote_adds_the_stack_with_the_developers_login(stack: Stack, dev: Developer):
    """`make git-remote` (README) in the checkout `make up` ran in: remote `stack`, whose
    credential helper reads .env, so reading and pushing need no typed password."""
    added = subprocess.run(
        ["make", "git-remote"], cwd=stack.project_dir, capture_output=True, text=True
    )
    assert added.returncode == 0, added.stdout + added.stderr
    url = f"http://127.0.0.1:{stack.env['GIT_PORT']}/mltoy.git"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=stack.project_dir,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )

    assert git("remote", "get-url", "stack").stdout.strip() == url
    listed = git("ls-remote", "stack", "refs/heads/main")
    assert listed.stdout.split() == [dev.remote_refs()["refs/heads/main"], "refs/heads/main"]
    # A dry run still authenticates the push (receive-pack) and changes nothing.
    pushed = git("push", "--dry-run", "stack", "HEAD:refs/heads/e2e-dry-run")
    assert pushed.returncode == 0, pushed.stderr
    assert "refs/heads/e2e-dry-run" not in dev.remote_refs()


def test_make_ups_seed_never_rewrites_the_stacks_history(
    stack: Stack, dev: Developer, c_push: Push
):
    """`make up` seeds the Git server with the checkout's HEAD only while it is empty: run
    again after the developer's pushes (the C push at least), its seed step
    (scripts/git-seed.sh) leaves main at the developer's tip, not at the checkout's older
    HEAD."""
    tip = dev.remote_refs()["refs/heads/main"]
    checkout = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=stack.project_dir, capture_output=True, text=True
    ).stdout.strip()
    assert checkout != tip
    seeded = subprocess.run(
        ["scripts/git-seed.sh"], cwd=stack.project_dir, capture_output=True, text=True
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert f"has history (main at {tip[:7]}); left as is" in seeded.stdout, seeded.stdout
    assert dev.remote_refs()["refs/heads/main"] == tip
