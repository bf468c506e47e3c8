"""Throw-away copies of the project: DVC workspaces (no git), as a flow container has them,
and fresh clones of this change (what a user has after `git clone`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from harness import REPO_ROOT

# What a DVC project needs to run the pipeline; a copy of these is a workspace.
PROJECT_FILES = (
    "dvc.yaml",
    "dvc.lock",
    "params.yaml",
    ".dvcignore",
    ".dvc/config",
    "data/raw/iris.csv.dvc",
    "mltoy",
)


def write_raw_iris(out: Path) -> Path:
    """The raw data set, written from scikit-learn's copy (`mltoy.cli raw-data`)."""
    subprocess.run(
        [sys.executable, "-m", "mltoy.cli", "raw-data", "--out", str(out)],
        check=True,
        cwd=REPO_ROOT,
    )
    return out


def make_project(destination: Path, raw_iris: Path) -> Path:
    """A fresh DVC workspace (no git) with its own local remote, as a container has."""
    for relpath in PROJECT_FILES:
        source = REPO_ROOT / relpath
        target = destination / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    shutil.copy2(raw_iris, destination / "data/raw/iris.csv")
    (destination / ".dvc/config.local").write_text("[core]\n    no_scm = true\n")
    return destination


def checkout_copy(destination: Path) -> Path:
    """What a fresh clone of this change holds: tracked files plus untracked, non-ignored
    ones, committed in a new repository (branch main)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for relpath in filter(None, listed.split("\0")):
        source = REPO_ROOT / relpath
        if source.is_file():
            (destination / relpath).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relpath)
    git = ["git", "-c", "user.name=mltoy tests", "-c", "user.email=tests@mltoy.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=destination, check=True)
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "this change"], cwd=destination, check=True)
    return destination


def params_with(project: Path, dotted: str, value: Any) -> dict[str, Any]:
    """The project's params.yaml with one key (`train.C`) replaced; not written."""
    document = yaml.safe_load((project / "params.yaml").read_text())
    *parents, leaf = dotted.split(".")
    node = document
    for part in parents:
        node = node[part]
    node[leaf] = value
    return document


def set_param(project: Path, dotted: str, value: Any) -> None:
    """Replace one key of the project's params.yaml, as a user editing it would."""
    document = params_with(project, dotted, value)
    (project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
