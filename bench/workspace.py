"""Throw-away DVC workspaces (no git), as the flow tests and containers use them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.procs import PYTHON, REPO_ROOT, run_timed


def raw_iris(workdir: Path) -> Path:
    """The raw data set, written once from scikit-learn's copy."""
    out = workdir / "raw" / "iris.csv"
    if not out.exists():
        run_timed([PYTHON, "-m", "mltoy.cli", "raw-data", "--out", str(out)], cwd=REPO_ROOT)
    return out


def new_project(destination: Path, raw_csv: Path) -> Path:
    """A copy of the project's DVC files and code with `raw_csv` as its raw data."""
    from tests.support import make_project  # the same workspace the flow tests use

    destination.mkdir(parents=True, exist_ok=True)
    return make_project(destination, raw_csv)


def params_with(project: Path, dotted: str, value: Any) -> dict[str, Any]:
    """The project's params.yaml with one key replaced (not written)."""
    document = yaml.safe_load((project / "params.yaml").read_text())
    *parents, leaf = dotted.split(".")
    node = document
    for part in parents:
        node = node[part]
    node[leaf] = value
    return document


def set_param(project: Path, dotted: str, value: Any) -> None:
    document = params_with(project, dotted, value)
    (project / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
