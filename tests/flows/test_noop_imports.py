"""A run with nothing to do imports none of the stages' heavy libraries (scipy,
scikit-learn, pandas, matplotlib): importing them costs a no-op run more than Prefect's
own work for it (docs/benchmarks.md, section 1). Each run is `python -m flows.cli` in a
new process, as `make run` starts it, reporting every module it imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

HEAVY = ("scipy", "sklearn", "pandas", "matplotlib")


def cli_run(option: str, project: Path, home: Path) -> tuple[list[str], set[str]]:
    """(output lines, top-level packages imported) of one `python -m flows.cli` run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),  # this session's server
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),  # option B's stage cache
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", option, "--project-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 0, "\n".join(errors[-40:])
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result.stdout.splitlines(), imported


@pytest.mark.slow
@pytest.mark.parametrize("option", ["a", "b"])
def test_a_no_op_run_imports_no_heavy_library(project, tmp_path, option):
    lines, imported = cli_run(option, project, tmp_path / "prefect-home")
    assert "stage train: ran" in lines
    # The first run drew the confusion matrix (and, in option B, ran the stages here).
    assert "matplotlib" in imported
    if option == "b":
        assert {"sklearn", "pandas"} <= imported

    lines, imported = cli_run(option, project, tmp_path / "prefect-home")
    assert [line for line in lines if line.startswith("stage ")] == [
        f"stage {stage}: skipped" for stage in ("prepare", "train", "evaluate")
    ]
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
