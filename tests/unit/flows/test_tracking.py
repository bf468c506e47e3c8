"""Pure parts of MLflow tracking: flat params, the commit tag's sources, the report."""

from __future__ import annotations

import subprocess

from flows import tracking
from flows.git_workspace import Commit
from flows.tracking import flatten, git_tags, report


def test_params_are_flattened_with_dotted_names():
    params = {"split": {"test_size": 0.3, "seed": 42}, "train": {"C": 1.0}, "top": "x"}
    assert flatten(params) == {"split.test_size": 0.3, "split.seed": 42, "train.C": 1.0, "top": "x"}


def test_git_tags_name_the_commit_the_run_ran(tmp_path):
    run = Commit("a" * 40, "subject", "me <me@x>", dirty=False)
    assert git_tags(tmp_path, run, published=True) == {
        "mlflow.source.git.commit": "a" * 40,
        "mltoy.git.dirty": "false",
        "mltoy.git.results_ref": "refs/heads/runs/aaaaaaa",
    }
    assert "mltoy.git.results_ref" not in git_tags(tmp_path, run, published=False)


def test_git_tags_read_a_work_tree_else_stay_unknown(tmp_path):
    assert git_tags(tmp_path, None, published=False) == {}  # no Git: unknown, never made up

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("commit", "-qm", "c")
    (tmp_path / "f").write_text("changed")
    tags = git_tags(tmp_path, None, published=False)
    assert tags == {"mlflow.source.git.commit": git("rev-parse", "HEAD"), "mltoy.git.dirty": "true"}


def test_the_report_names_the_decision_and_both_values():
    outcome = {
        "status": "logged",
        "run_id": "r1",
        "model_name": "iris-classifier",
        "version": "2",
        "new_version": True,
        "decision": {
            "outcome": "kept",
            "reason": "accuracy 0.755556 < 0.911111: champion kept",
            "metric": "accuracy",
            "candidate": 0.755556,
            "champion": 0.911111,
            "champion_version": "1",
        },
    }
    text = report("option A, dvc repro", "http://mlflow/#/x", outcome)
    assert "[r1](http://mlflow/#/x)" in text
    assert "**kept**" in text and "0.755556" in text and "0.911111" in text
    assert "version 2 (new)" in text
    skipped = report("option B", "", {"status": "skipped", "reason": "ConnectionError: down"})
    assert "**Tracking skipped**: ConnectionError: down" in skipped


def test_the_login_is_linked_again_where_home_is_a_tmpfs(tmp_path, monkeypatch):
    """A flow container's home hides the image's link to the settings volume's login."""
    settings_login = tmp_path / "run/mltoy/mlflow/credentials"
    settings_login.parent.mkdir(parents=True)
    settings_login.write_text("[mlflow]\nmlflow_tracking_username = flows\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tracking._link_login(settings_login)
    assert (tmp_path / "home/.mlflow/credentials").read_text() == settings_login.read_text()
    tracking._link_login(settings_login)  # idempotent


def test_no_login_in_the_settings_volume_links_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tracking._link_login(tmp_path / "absent")
    assert not (tmp_path / "home/.mlflow").exists()
