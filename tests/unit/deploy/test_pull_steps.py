"""The pull steps around git_clone: which commit, and whether the image can run it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deploy.pull_steps import check_commit, lock_drift


def test_commit_must_be_a_full_sha_or_nothing():
    sha = "a" * 40
    assert check_commit(sha.upper()) == sha
    assert check_commit(None) is None and check_commit("  ") is None
    with pytest.raises(ValueError, match="full 40-character SHA"):
        check_commit("abc1234")
    with pytest.raises(ValueError, match="full 40-character SHA"):
        check_commit("main")


def test_lock_drift_names_the_rebuild(tmp_path: Path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("prefect==3.8.8\n")
    image = tmp_path / "requirements.lock.sha256"
    image.write_text(hashlib.sha256(lock.read_bytes()).hexdigest() + "\n")
    assert lock_drift(tmp_path, image) is None
    lock.write_text("prefect==3.8.8\nxgboost==3.0.0\n")
    reason = lock_drift(tmp_path, image)
    assert reason and "requirements.lock" in reason and "make up" in reason
    image.unlink()
    assert "is missing" in (lock_drift(tmp_path, image) or "")
    lock.unlink()
    assert lock_drift(tmp_path, image) is None  # nothing pinned, nothing to compare
