"""Git as the record of runs: what commit a run ran, and its results sent back to Git.

In the stack each run works in a clone of the commit it runs (prefect.yaml's pull steps).
`start` names the run after that commit, so the UI's run list reads as a commit log.
`publish` (after success) commits the updated dvc.lock on top of it and pushes that to
`refs/heads/runs/<short-sha>`, never to main (a push to main starts a run: no loops);
`git fetch stack && git checkout runs/<short-sha> && dvc pull` then gives that run's
outputs. Outside a Git work tree (the tests' throw-away workspaces) both do nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.context import FlowRunContext

from flows import run_report
from flows.git_workspace import SHORT, Commit, GitError, git, head


def run_name(commit: Commit) -> str:
    return f"{commit.short} {commit.subject}"[:120]


def start(project: Path, commit: str | None = None) -> Commit | None:
    """Name the flow run after the commit it runs (and tag it `commit:<short>`).

    `commit`, when given, must be what the workspace holds (the pull steps clone it)."""
    logger = get_run_logger()
    found = head(project)
    if commit and (found is None or found.sha != commit):
        at = found.sha if found else "not a Git work tree"
        raise ValueError(f"commit {commit} was asked for, but {project} is at {at}")
    if found is None:
        return None
    logger.info(
        "commit %s %s (%s)%s",
        found.sha,
        found.subject,
        found.author,
        " + uncommitted changes" if found.dirty else "",
    )
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        from prefect.client.orchestration import get_client

        run = context.flow_run
        tags = sorted({*run.tags, f"commit:{found.short}"})
        with get_client(sync_client=True) as client:
            client.update_flow_run(run.id, name=run_name(found), tags=tags)
    return found


def _dvc(project: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise GitError(f"dvc {args[0]} exited with {result.returncode}: {last}")


def record_lock(project: Path) -> None:
    """Write dvc.lock from the workspace (`dvc commit`) and send its outputs to the remote,
    for a flow that ran the stages itself (option B), so its results are pull-able too."""
    _dvc(project, "commit", "--force", "--quiet")
    _dvc(project, "push", "--quiet")


@task(retries=2, retry_delay_seconds=[2, 5])
def push_results(project: Path, ref: str) -> None:
    """Force-push HEAD to the results ref. Retried: when options A and B run one commit
    (MLTOY_PUSH_RUNS=both), their pushes of that ref can meet, and the Git server then
    fails to lock the ref for one of them ("failed to push some refs")."""
    git(project, "push", "--quiet", "--force", "origin", f"HEAD:{ref}")


def publish(project: Path, commit: Commit, message: str) -> str:
    """One commit with the updated dvc.lock on top of `commit`, pushed to its results ref
    (replacing an earlier run's of the same commit); returns the results commit's SHA."""
    current = head(project)
    if current is None or current.sha != commit.sha:
        raise GitError(f"{project} moved off {commit.sha} during the run")
    # dvc.lock, and params.yaml when the run overrode params (dvc.lock records them).
    git(project, "add", "dvc.lock", "params.yaml")
    git(project, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message)
    sha = git(project, "rev-parse", "HEAD")
    push_results(project, commit.results_ref)
    get_run_logger().info("results: %s pushed to %s", sha[:SHORT], commit.results_ref)
    return sha


def finish(
    project: Path,
    commit: Commit | None,
    option: str,
    outcomes: Mapping[str, str],
    metrics: Mapping[str, Any],
    publish_results: bool = False,
    lock_written: bool = True,
) -> None:
    """After a successful run: the report artifact, and with `publish_results` the results
    commit on its ref (`lock_written`: the flow updated dvc.lock itself, as `dvc repro`
    does; otherwise `dvc commit` writes it first). Nothing outside a Git work tree."""
    if commit is None:
        return
    if publish_results and not lock_written:
        record_lock(project)
    run_report.report(project, commit, option, outcomes, metrics, compare=publish_results)
    if publish_results:
        summary = ", ".join(f"{name}={value}" for name, value in metrics.items())
        context = FlowRunContext.get()
        run = f"{context.flow_run.name} ({context.flow_run.id})" if context else "a local run"
        message = f"results of {commit.short} ({option})\n\n{summary}\n\nPrefect flow run: {run}\n"
        publish(project, commit, message)
