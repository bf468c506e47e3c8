"""The sweep's grid is DVC's: these pin what `dvc exp run -S` does with the installed DVC
(dvc.utils.cli_parse, dvc.utils.hydra), so an upgrade that changes it fails here."""

import shutil

import pytest

from flows.sweep_grid import SweepError, best, combinations, plan, rank
from tests.support import REPO_ROOT


@pytest.fixture
def params_project(tmp_path):
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_a_grid_is_every_combination_in_dvcs_order():
    assert combinations(["train.C=0.1,1", "split.seed=1,2"]) == [
        ("train.C=0.1", "split.seed=1"),
        ("train.C=0.1", "split.seed=2"),
        ("train.C=1", "split.seed=1"),
        ("train.C=1", "split.seed=2"),
    ]


def test_choice_range_and_fixed_values_as_dvc_reads_them():
    assert combinations(["train.C=choice(0.5,2)", "split.seed=range(1,3)", "train.seed=7"]) == [
        ("train.C=0.5", "split.seed=1", "train.seed=7"),
        ("train.C=0.5", "split.seed=2", "train.seed=7"),
        ("train.C=2", "split.seed=1", "train.seed=7"),
        ("train.C=2", "split.seed=2", "train.seed=7"),
    ]
    assert combinations([]) == [()]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.C=1,"], "overrides ['train.C=1,']: mismatched input"),
        (["train.C=glob(*)"], "Glob override 'train.C=glob(*)' is not supported"),
        (["other.yaml:train.C=1,2"], "overrides of other.yaml: a sweep sets params.yaml only"),
    ],
)
def test_a_grid_that_cannot_be_read_fails_the_sweep_in_one_line(overrides, message):
    with pytest.raises(SweepError) as raised:
        combinations(overrides)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_each_trial_changes_only_its_swept_params_with_dvcs_types(params_project):
    trials = plan(params_project, ["train.C=0.1,1", "split.seed=1,2"])
    assert [t.number for t in trials] == [1, 2, 3, 4]
    assert all(t.error is None for t in trials)
    assert trials[1].params == {"train": {"C": 0.1}, "split": {"seed": 2}}
    # train.C=1 is params.yaml's own value: not a change; an int where YAML said 1.0
    assert trials[2].params == {"split": {"seed": 1}}
    assert trials[2].swept == {"train.C": 1, "split.seed": 1}
    assert trials[2].label == "train.C=1 split.seed=1"


def test_an_invalid_trial_is_named_with_a_one_line_reason_and_the_others_stand(params_project):
    trials = plan(params_project, ["train.C=0.5,-1,abc"])
    valid, negative, text = trials
    assert valid.error is None and valid.params == {"train": {"C": 0.5}}
    assert negative.params is None
    assert negative.error == "train.C = -1: must be a finite number > 0"
    assert text.error == "train.C = 'abc': must be a finite number > 0"
    unknown = plan(params_project, ["train.nope=1"])[0]
    assert unknown.error == "Could not override 'train.nope'."


def row(trial, state="Completed", **metrics):
    return {"trial": trial, "state": state, "metrics": metrics}


def test_ranking_best_first_by_mode_failed_last_ties_by_trial():
    rows = [
        row(1, accuracy=0.9),
        row(2, "Failed"),
        row(3, accuracy=1.0),
        row(4, accuracy=0.9),
        row(5, "Crashed", accuracy=1.0),  # a metric without a completed run does not count
    ]
    assert [r["trial"] for r in rank(rows, "accuracy", "max")] == [3, 1, 4, 2, 5]
    assert [r["trial"] for r in rank(rows, "accuracy", "min")] == [1, 4, 3, 2, 5]
    assert best(rows, "accuracy", "max")["trial"] == 3
    assert best(rows, "f1", "max") is None
    assert best([row(1, "Failed")], "accuracy", "max") is None
    with pytest.raises(SweepError, match="mode = 'top': must be one of max, min"):
        rank(rows, "accuracy", "top")
