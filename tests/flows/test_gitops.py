"""Runs in a Git clone, as in the stack: named after their commit, a report of what changed
against the previous results, and the results commit pushed to runs/<short-sha>."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.option_a import pipeline_a
from flows.option_b import pipeline_b
from flows.run_report import ARTIFACT_KEY
from tests.flows.helpers import set_param
from tests.support import REPO_ROOT, make_project

GIT = ["git", "-c", "user.name=Ada Dev", "-c", "user.email=ada@mltoy.invalid"]
IGNORED = "/data/raw/iris.csv\n/data/prepared/\n/models/\n/reports/\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path, raw_iris: Path) -> Path:
    """A clone of a bare `origin` holding the project; DVC remote in a local directory."""
    source = make_project(tmp_path / "source", raw_iris)
    (source / ".dvc/config.local").unlink()  # with Git: DVC uses it (SCM)
    (source / ".gitignore").write_text(IGNORED)
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "the project")
    git(tmp_path, "clone", "-q", "--bare", str(source), "origin.git")
    git(tmp_path, "clone", "-q", "origin.git", "clone")
    clone = tmp_path / "clone"
    shutil.copy2(raw_iris, clone / "data/raw/iris.csv")
    dvc_remote = tmp_path / "dvc-remote"
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "add", "--local", "-d", "here", str(dvc_remote)],
        cwd=clone,
        check=True,
    )
    # As the stack's deploy step does: the raw data in DVC's cache and remote.
    subprocess.run(
        [sys.executable, "-m", "deploy.raw_data", "--push", "--project-dir", str(clone)],
        cwd=REPO_ROOT,
        check=True,
    )
    return clone


def report(flow_run_id: UUID) -> str:
    async def read() -> str:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        (found,) = [a for a in artifacts if a.key == ARTIFACT_KEY]
        return found.data

    return asyncio.run(read())


def results(clone: Path, sha: str) -> dict:
    """The results commit of `sha` in origin: its parent and its dvc.lock."""
    ref = f"refs/heads/runs/{sha[:7]}"
    git(clone, "fetch", "-q", "origin", ref)
    return {
        "parent": git(clone, "rev-parse", "FETCH_HEAD^"),
        "lock": yaml.safe_load(git(clone, "show", "FETCH_HEAD:dvc.lock")),
        "author": git(clone, "log", "-1", "--format=%an", "FETCH_HEAD"),
    }


@pytest.mark.slow
def test_results_go_to_runs_ref_and_the_next_run_reports_what_changed(clone: Path):
    first_sha = git(clone, "rev-parse", "HEAD")
    state = pipeline_a(
        project_dir=str(clone), pull=True, push=True, publish_results=True, return_state=True
    )
    assert state.is_completed()
    first = results(clone, first_sha)
    assert first["parent"] == first_sha
    assert first["lock"]["stages"]["train"]["outs"][0]["path"] == "models/model.joblib"
    text = report(state.state_details.flow_run_id)
    assert f"- commit: `{first_sha}`" in text and "Ada Dev" in text
    assert "compared with: nothing" in text and "| prepare | ran:" in text
    assert git(clone, "rev-parse", "origin/main") == first_sha  # main untouched

    # A new commit (train.C), on top of the first: compared with the first's results.
    git(clone, "checkout", "-q", first_sha)  # the results commit is local: back to main's
    set_param(clone, "train.C", 0.25)
    git(clone, "commit", "-q", "-am", "train: C = 0.25")
    second_sha = git(clone, "rev-parse", "HEAD")
    state = pipeline_b(
        project_dir=str(clone), use_remote=True, publish_results=True, return_state=True
    )
    assert state.is_completed()
    second = results(clone, second_sha)
    assert second["parent"] == second_sha
    assert second["lock"]["stages"]["train"]["params"]["params.yaml"]["train"]["C"] == 0.25
    text = report(state.state_details.flow_run_id)
    assert f"(results of {first_sha[:7]})" in text
    assert "| params.yaml | train.C | 1.0 | 0.25 |" in text, text
    assert "| reports/metrics.json | accuracy |" in text, text
    assert re.search(r"\| prepare \| (ran|skipped): inputs unchanged since", text), text
    assert "| train | ran: changed since" in text and "train.C" in text, text


@pytest.mark.slow
def test_a_run_asked_for_another_commit_than_the_workspace_holds_fails(clone: Path):
    with pytest.raises(ValueError, match="was asked for"):
        pipeline_a(project_dir=str(clone), commit="0" * 40)


def test_a_results_push_that_fails_once_is_retried(tmp_path: Path):
    """As when options A and B push one commit's results ref at the same moment and the
    Git server fails to lock it for one: the push is a task with retries."""
    from flows.gitops import push_results

    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    refused_once = tmp_path / "refused-once"
    hook = origin / "hooks/pre-receive"
    hook.write_text(
        f"#!/bin/sh\nif [ ! -e {refused_once} ]; then touch {refused_once};"
        " echo 'cannot lock ref' >&2; exit 1; fi\n"
    )
    hook.chmod(0o755)
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git(work, "commit", "-q", "--allow-empty", "-m", "results")
    git(work, "remote", "add", "origin", str(origin))
    push_results(work, "refs/heads/runs/abcdef0")
    assert refused_once.exists()  # the first attempt was refused
    assert git(origin, "rev-parse", "refs/heads/runs/abcdef0") == git(work, "rev-parse", "HEAD")
