"""The pipeline graph in the README is DVC's own (`dvc dag --md`): CI fails on drift."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import REPO_ROOT

BLOCK = re.compile(r"<!-- dvc dag --md[^>]*-->\n(.*?)\n<!-- end dvc dag -->", re.DOTALL)


def test_readme_pipeline_graph_is_dvc_dag_of_dvc_yaml():
    dag = subprocess.run(
        [sys.executable, "-m", "dvc", "dag", "--md"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    match = BLOCK.search((REPO_ROOT / "README.md").read_text())
    assert match, "README.md has no <!-- dvc dag --md --> block"
    assert match.group(1).strip() == dag, (
        "README.md's pipeline graph differs from dvc.yaml: paste `dvc dag --md` between "
        f"the markers:\n{dag}"
    )
