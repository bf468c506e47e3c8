import shutil
from pathlib import Path

import pandas as pd
import pytest

from mltoy.cli import run
from mltoy.data import iris_frame, write_raw

from .helpers import STAGES, write_params


@pytest.fixture(scope="session")
def iris() -> pd.DataFrame:
    return iris_frame()


@pytest.fixture
def raw_csv(tmp_path: Path) -> Path:
    path = tmp_path / "iris.csv"
    write_raw(path)
    return path


@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project dir after the whole chain ran with good params, built once per session."""
    root = tmp_path_factory.mktemp("built")
    write_params(root / "params.yaml")
    for command in ("raw-data", *STAGES):
        run([command], cwd=root)
    return root


@pytest.fixture
def workspace(tmp_path: Path, built_workspace: Path) -> Path:
    """A private copy of `built_workspace`, free to break."""
    return Path(shutil.copytree(built_workspace, tmp_path / "workspace"))
