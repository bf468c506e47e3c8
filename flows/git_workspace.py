"""The Git facts of a workspace: is it a work tree, which commit is checked out.

Outside a Git work tree (the tests' throw-away workspaces) `head` is None and everything
built on it does nothing.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

RESULTS_PREFIX = "refs/heads/runs/"
SHORT = 7


class GitError(RuntimeError):
    """A git command failed; the message carries its last error line."""


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str
    dirty: bool = False

    @property
    def short(self) -> str:
        return self.sha[:SHORT]

    @property
    def results_ref(self) -> str:
        return f"{RESULTS_PREFIX}{self.short}"


def git(project: Path, *args: str) -> str:
    """A git command's output; never prompts (no terminal in a flow run)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise GitError(f"git {args[0]} exited with {result.returncode}: {last}")
    return result.stdout.strip()


def is_work_tree(project: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=project, capture_output=True, text=True
    )
    return result.returncode == 0 and Path(result.stdout.strip()).resolve() == project.resolve()


def head(project: Path) -> Commit | None:
    """The commit checked out in `project`, or None when it is not a Git work tree."""
    if not is_work_tree(project):
        return None
    try:
        git(project, "rev-parse", "--verify", "--quiet", "HEAD")
    except GitError:
        return None  # a repository without a commit yet
    sha, subject, author = git(project, "log", "-1", "--format=%H%x00%s%x00%an <%ae>").split("\0")
    dirty = bool(git(project, "status", "--porcelain", "--untracked-files=no"))
    return Commit(sha, subject, author, dirty)
