"""Test support shared across layers: the repo root and throw-away project copies."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

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


def free_port() -> int:
    """A local TCP port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
