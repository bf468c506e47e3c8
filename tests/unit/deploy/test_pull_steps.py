"""The pull steps around git_clone: which commit, and whether the image can run it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deploy.pull_steps import check_commit, lock_drift, use_remote


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


def dvc_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: str | None) -> Path:
    """A clone's DVC project and a global config (remote-init's) defining `remote`."""
    project, global_dir = tmp_path / "project", tmp_path / "global"
    (project / ".dvc").mkdir(parents=True)
    repo_config = "[core]\n    remote = local\n['remote \"local\"']\n    url = /tmp/x\n"
    (project / ".dvc/config").write_text(repo_config)
    global_dir.mkdir()
    if remote:
        (global_dir / "config").write_text(f"['remote \"{remote}\"']\n    url = s3://b/dvc\n")
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(global_dir))
    return project


def test_use_remote_makes_the_stacks_remote_the_default_as_dvc_reads_it(tmp_path, monkeypatch):
    from dvc.config import Config

    project = dvc_project(tmp_path, monkeypatch, "storage")
    assert use_remote(str(project)) == {"remote": "storage"}
    assert Config(str(project / ".dvc"))["core"]["remote"] == "storage"  # local outranks repo


def test_use_remote_refuses_a_remote_no_config_defines(tmp_path, monkeypatch):
    project = dvc_project(tmp_path, monkeypatch, None)
    with pytest.raises(ValueError, match="DVC remote 'storage' is not configured"):
        use_remote(str(project))
    assert not (project / ".dvc/config.local").exists()


def test_use_remote_refuses_a_directory_that_is_no_dvc_project(tmp_path, monkeypatch):
    """A relative path read from another working directory must not write elsewhere."""
    project = dvc_project(tmp_path, monkeypatch, "storage")
    monkeypatch.chdir(project)
    with pytest.raises(FileNotFoundError, match="is not a DVC project"):
        use_remote("project")  # project/project: the mistake a later chdir makes
    assert not (project / "project").exists()
