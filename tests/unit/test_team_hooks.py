"""The team's git hooks (.pre-commit-config.yaml): local only, ruff blocks, dvc status warns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import VENV, make_in_checkout
from tests.support import REPO_ROOT, checkout_copy


def test_hooks_are_local_only():
    """No hook repository to download at install time."""
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert {hook["language"] for hook in config["repos"][0]["hooks"]} == {"system"}


@pytest.mark.slow
def test_ruff_blocks_a_commit_and_dvc_status_only_warns(tmp_path: Path):
    checkout = checkout_copy(tmp_path / "clone")
    (checkout / ".venv").symlink_to(VENV)  # the hooks use the project's venv
    # `make hooks`, as the README says (with the test's own venv, not set up again).
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    installed = subprocess.run(
        make_in_checkout("hooks"),
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for hook in ("pre-commit", "post-checkout"):
        assert "pre-commit" in (checkout / ".git/hooks" / hook).read_text(), hook
    # Outputs are stale (no data, nothing reproduced): a warning, and the commit goes in.
    (checkout / "params.yaml").write_text((checkout / "params.yaml").read_text() + "\n")
    committed = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "params"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert "warning: DVC outputs are not those" in committed.stdout + committed.stderr
    # A lint error stops the commit.
    (checkout / "mltoy/bad.py").write_text("import os\n")
    subprocess.run(["git", "add", "mltoy/bad.py"], cwd=checkout, check=True)
    refused = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "bad"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "F401" in out, out
