"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.gcs import EMULATOR_ENV
from harness.workspace import write_raw_iris
from tests.support import REPO_ROOT, make_project

# No test talks to Google, every gs:// one to an emulator; gcsfs reads this at import,
# which may happen in any test of the session, so it is set before any is imported.
for _name, _value in EMULATOR_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def raw_iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw data set, written once per session from scikit-learn's copy."""
    return write_raw_iris(tmp_path_factory.mktemp("raw") / "iris.csv")


@pytest.fixture
def project(tmp_path: Path, raw_iris: Path) -> Path:
    """A fresh DVC workspace (no git) with its own local remote, as a container has."""
    return make_project(tmp_path / "project", raw_iris)
