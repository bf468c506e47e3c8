"""The run's report, as CML would post it on a pull request: a markdown artifact.

What was run (commit SHA, subject, author), each stage ran or skipped and why, DVC's own
`dvc params diff` and `dvc metrics diff` against the baseline, and the DVC hashes of the
data and the model. The baseline is the results of the nearest commit on the first-parent
line (this one included: a rerun compares with the previous run of the same commit) that
has a results ref, `runs/<short-sha>`; without one, nothing is compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prefect.artifacts import create_markdown_artifact

from flows.dvc_output import RAN
from flows.git_workspace import RESULTS_PREFIX, SHORT, Commit, git
from flows.workspace import flatten

ARTIFACT_KEY = "mltoy-run-report"
LOCK = "dvc.lock"
MAX_ANCESTORS = 200
DVC_TIMEOUT = 120  # seconds


@dataclass(frozen=True)
class Baseline:
    """A previous run's results: the results commit and the source commit it ran."""

    ref: str
    sha: str
    source: str


def find_baseline(project: Path, commit: Commit) -> Baseline | None:
    """The results of `commit`, else of its nearest first-parent ancestor that has any."""
    listed = git(project, "ls-remote", "origin", f"{RESULTS_PREFIX}*")
    refs = dict(reversed(line.split("\t")) for line in listed.splitlines() if "\t" in line)
    if not refs:
        return None
    if git(project, "rev-parse", "--is-shallow-repository") == "true":
        git(project, "fetch", "--quiet", "--unshallow", "origin")
    ancestors = git(
        project, "rev-list", "--first-parent", f"--max-count={MAX_ANCESTORS}", commit.sha
    ).split()
    for source in ancestors:
        ref = f"{RESULTS_PREFIX}{source[:SHORT]}"
        if ref not in refs:
            continue
        git(project, "fetch", "--quiet", "origin", ref)
        sha = git(project, "rev-parse", "FETCH_HEAD")
        if git(project, "rev-parse", f"{sha}^") == source:  # results on top of that commit
            _fetch_blobs(project, sha)
            return Baseline(ref.removeprefix("refs/heads/"), sha, source)
    return None


def _fetch_blobs(project: Path, sha: str) -> None:
    """Make `sha`'s files local. Prefect's git_clone of a commit is a partial clone
    (--filter=blob:none): git fetches missing blobs when it needs them, but DVC reads
    other revisions through its own Git libraries, which do not, and wait. A throw-away
    worktree makes git fetch them all, in one batch."""
    worktree = project.parent / f".baseline-{sha[:SHORT]}"
    git(project, "worktree", "add", "--quiet", "--detach", str(worktree), sha)
    git(project, "worktree", "remove", "--force", str(worktree))


def _dvc_json(project: Path, *args: str) -> tuple[dict[str, Any], str]:
    """A DVC command's --json answer, or ({}, its error line). Never waits for input or
    for ever: the report is not worth a stuck run."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", *args, "--json"],
            cwd=project,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            timeout=DVC_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {}, f"dvc {args[0]} {args[1]} took more than {DVC_TIMEOUT} s"
    if result.returncode != 0:
        return {}, (result.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(result.stdout or "{}"), ""


def _lock_stages(text: str | None) -> dict[str, Any]:
    return (yaml.safe_load(text) or {}).get("stages", {}) if text else {}


def stage_changes(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> list[str]:
    """What differs in one stage's dvc.lock entry from the baseline's: cmd, deps, params."""
    if previous is None:
        return ["new stage"]
    changes = ["command"] if current.get("cmd") != previous.get("cmd") else []
    before = {dep["path"]: dep.get("md5") for dep in previous.get("deps", [])}
    for dep in current.get("deps", []):
        if before.get(dep["path"]) != dep.get("md5"):
            changes.append(dep["path"])
    old_params, new_params = previous.get("params", {}), current.get("params", {})
    for file, values in new_params.items():
        old = flatten(old_params.get(file, {}))
        changes += [key for key, value in flatten(values).items() if old.get(key) != value]
    return changes


def stage_reasons(
    outcomes: Mapping[str, str], lock: str, baseline_lock: str | None, label: str | None
) -> dict[str, str]:
    """{stage: "ran: ..." | "skipped: ..."}, explained against the baseline's dvc.lock."""
    now, then = _lock_stages(lock), _lock_stages(baseline_lock)
    reasons = {}
    for stage, outcome in outcomes.items():
        verb = "ran" if outcome == RAN else "skipped"
        if label is None:
            why = "no previous results to compare with"
        else:
            changes = stage_changes(now.get(stage, {}), then.get(stage))
            if not changes and outcome != RAN:
                why = f"inputs unchanged since {label}"
            elif not changes:
                why = f"inputs unchanged since {label}, but no stored result of them was at hand"
            elif outcome == RAN:
                why = "changed since " + label + ": " + ", ".join(changes)
            else:
                why = (
                    f"changed since {label} ({', '.join(changes)}), but this exact state "
                    "ran before: outputs restored from the DVC cache"
                )
        reasons[stage] = f"{verb}: {why}"
    return reasons


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def tracked_hashes(project: Path, lock: str) -> list[list[str]]:
    """[path, md5, size] of every DVC-tracked file: the .dvc files' and dvc.lock's outs."""
    rows = []
    for name in git(project, "ls-files", "*.dvc").split():
        dvc_file = project / name
        for out in (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", []):
            path = Path(name).parent / out["path"]
            rows.append([path.as_posix(), out.get("md5", ""), out.get("size", "")])
    for stage in _lock_stages(lock).values():
        rows += [
            [out["path"], out.get("md5", ""), out.get("size", "")] for out in stage.get("outs", [])
        ]
    return rows


def _diff_section(title: str, answer: dict[str, Any], error: str, columns: list[str]) -> str:
    if error:
        return f"### {title}\n\nnot available: {error}"
    rows = [
        [file, key, *(values.get(c, "") for c in columns)]
        for file, changes in answer.items()
        for key, values in changes.items()
    ]
    if not rows:
        return f"### {title}\n\nno change"
    return f"### {title}\n\n" + _table(["file", "name", *columns], rows)


def render(
    commit: Commit,
    option: str,
    reasons: Mapping[str, str],
    baseline: Baseline | None,
    params_diff: tuple[dict[str, Any], str],
    metrics_diff: tuple[dict[str, Any], str],
    hashes: list[list[str]],
    metrics: Mapping[str, Any],
) -> str:
    against = f"`{baseline.ref}` (results of {baseline.source[:SHORT]})" if baseline else "nothing"
    parts = [
        f"## {commit.short} {commit.subject}",
        f"- commit: `{commit.sha}`" + (" (+ uncommitted changes)" if commit.dirty else ""),
        f"- author: {commit.author}",
        f"- flow: {option}",
        f"- compared with: {against}",
        "### Stages\n\n" + _table(["stage", "outcome"], [[s, r] for s, r in reasons.items()]),
    ]
    if baseline:
        parts.append(_diff_section("Params diff (dvc params diff)", *params_diff, ["old", "new"]))
        parts.append(
            _diff_section("Metrics diff (dvc metrics diff)", *metrics_diff, ["old", "new", "diff"])
        )
    parts.append(
        "### Metrics\n\n" + _table(["metric", "value"], [[k, v] for k, v in metrics.items()])
    )
    parts.append("### DVC-tracked data and model\n\n" + _table(["path", "md5", "size"], hashes))
    return "\n\n".join(parts) + "\n"


def report(
    project: Path,
    commit: Commit,
    option: str,
    outcomes: Mapping[str, str],
    metrics: Mapping[str, Any],
    compare: bool = True,
) -> str:
    """Build the report, publish it as the run's markdown artifact, return its text.

    `compare`: look for a baseline on the `origin` remote (the stack's Git server); off
    for a local run, whose checkout's remote may be anywhere."""
    baseline = find_baseline(project, commit) if compare else None
    lock = (project / LOCK).read_text() if (project / LOCK).is_file() else ""
    baseline_lock = git(project, "show", f"{baseline.sha}:{LOCK}") if baseline else None
    label = f"{baseline.source[:SHORT]}'s results" if baseline else None
    reasons = stage_reasons(outcomes, lock, baseline_lock, label)
    params: tuple[dict[str, Any], str] = ({}, "")
    metric_diff = params
    if baseline:
        params = _dvc_json(project, "params", "diff", baseline.sha)
        metric_diff = _dvc_json(project, "metrics", "diff", "--all", baseline.sha)
    markdown = render(
        commit,
        option,
        reasons,
        baseline,
        params,
        metric_diff,
        tracked_hashes(project, lock),
        metrics,
    )
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=markdown,
        description=f"What {commit.short} ran and what changed ({option}).",
    )
    return markdown
