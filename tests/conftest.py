"""Fixtures shared by every test layer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, make_project


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def raw_iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw data set, written once per session from scikit-learn's copy."""
    out = tmp_path_factory.mktemp("raw") / "iris.csv"
    subprocess.run(
        [sys.executable, "-m", "mltoy.cli", "raw-data", "--out", str(out)],
        check=True,
        cwd=REPO_ROOT,
    )
    return out


@pytest.fixture
def project(tmp_path: Path, raw_iris: Path) -> Path:
    """A fresh DVC workspace (no git) with its own local remote, as a container has."""
    return make_project(tmp_path / "project", raw_iris)
