"""Test support shared across layers: the repo root and throw-away project copies."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
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


def free_port() -> int:
    """A local TCP port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def use_unreachable_s3_remote(project: Path) -> str:
    """Make the project's default remote an S3 store nobody answers for; return its
    endpoint. As in a container: remote 'storage', bucket mltoy, prefix dvc."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("remote", "add", "--local", "--default", "storage", "s3://mltoy/dvc"),
        ("remote", "modify", "--local", "storage", "endpointurl", endpoint),
        ("remote", "modify", "--local", "storage", "access_key_id", "nobody"),
        ("remote", "modify", "--local", "storage", "secret_access_key", "nothing"),
    ):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, check=True)
    return endpoint
