import math
from pathlib import Path
from typing import Any

import pytest

import mltoy
from mltoy.errors import ParamsError
from mltoy.params import Params, load_params, parse_params

from .helpers import GOOD_PARAMS, MISSING, edited, write_params

NUMBER_IN_0_1 = "must be a finite number > 0 and < 1"

# (keys, value, message after "<file>: ")
BAD_VALUES = [
    (("split", "test_size"), 1.5, f"split.test_size = 1.5: {NUMBER_IN_0_1}"),
    (("split", "test_size"), 0, f"split.test_size = 0: {NUMBER_IN_0_1}"),
    (("split", "test_size"), 1, f"split.test_size = 1: {NUMBER_IN_0_1}"),
    (("split", "test_size"), -0.1, f"split.test_size = -0.1: {NUMBER_IN_0_1}"),
    (("split", "test_size"), "0.3", f"split.test_size = '0.3': {NUMBER_IN_0_1}"),
    (("split", "seed"), "abc", "split.seed = 'abc': must be an integer >= 0"),
    (("split", "seed"), -1, "split.seed = -1: must be an integer >= 0"),
    (("split", "seed"), True, "split.seed = true: must be an integer >= 0"),
    (("train", "C"), 0, "train.C = 0: must be a finite number > 0"),
    (("train", "C"), "strong", "train.C = 'strong': must be a finite number > 0"),
    (("train", "C"), math.inf, "train.C = inf: must be a finite number > 0"),
    (("train", "C"), None, "train.C = null: must be a finite number > 0"),
    (("train", "max_iter"), 0, "train.max_iter = 0: must be an integer >= 1"),
    (("train", "max_iter"), 2.5, "train.max_iter = 2.5: must be an integer >= 1"),
    (
        ("evaluate", "average"),
        "median",
        "evaluate.average = 'median': must be one of 'macro', 'weighted', 'micro'",
    ),
    (("train", "C"), MISSING, "train.C is missing (required: a finite number > 0)"),
    (("evaluate",), MISSING, "evaluate is missing (required: a mapping with keys average)"),
    (
        ("train", "foo"),
        3,
        "train.foo = 3: unknown key (allowed keys in train: C, max_iter, seed)",
    ),
    (
        ("model",),
        "big",
        "model = 'big': unknown key (allowed keys at top level: split, train, evaluate)",
    ),
    (("train",), 3, "train = 3: must be a mapping with keys C, max_iter, seed"),
]


def load_error(path: Path) -> str:
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_repo_params_file_is_valid() -> None:
    params = load_params(Path(mltoy.__file__).parents[1] / "params.yaml")
    assert params.model_dump() == GOOD_PARAMS


def test_values_are_read_from_the_file(tmp_path: Path) -> None:
    document = edited(("evaluate", "average"), "weighted", edited(("split", "seed"), 7))
    params = load_params(write_params(tmp_path / "params.yaml", document))
    assert (params.split.test_size, params.split.seed) == (0.3, 7)
    assert (params.train.C, params.train.max_iter, params.train.seed) == (1.0, 500, 42)
    assert params.evaluate.average == "weighted"


def test_an_integer_is_accepted_where_a_number_is_expected(tmp_path: Path) -> None:
    params = load_params(write_params(tmp_path / "params.yaml", edited(("train", "C"), 2)))
    assert params.train.C == 2.0
    assert isinstance(params.train.C, float)


@pytest.mark.parametrize(("keys", "value", "expected"), BAD_VALUES)
def test_bad_value_names_file_key_value_and_what_is_allowed(
    tmp_path: Path, keys: tuple[str, ...], value: Any, expected: str
) -> None:
    path = write_params(tmp_path / "params.yaml", edited(keys, value))
    assert load_error(path) == f"{path}: {expected}"


def test_several_problems_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    document = edited(("train", "C"), MISSING, edited(("split", "seed"), -1))
    document["split"]["test_size"] = 2
    path = write_params(tmp_path / "params.yaml", document)
    assert load_error(path) == f"{path}: split.test_size = 2: {NUMBER_IN_0_1} (and 2 more)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no params (required: a mapping with keys split, train, evaluate)"),
        ("# nothing yet\n", "no params (required: a mapping with keys split, train, evaluate)"),
        ("- 1\n- 2\n", "top level is a list; must be a mapping with keys split, train, evaluate"),
        (
            "split:\n  test_size: 0.3\n seed: 42\n",
            "invalid YAML at line 3, column 2: "
            "expected <block end>, but found '<block mapping start>'",
        ),
        (
            "split: [1, 2\ntrain: {}\n",
            "invalid YAML at line 2, column 6: expected ',' or ']', but got ':'",
        ),
    ],
)
def test_malformed_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_error(path) == f"{path}: {expected}"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert load_error(path) == f"{path}: cannot read: No such file or directory"


def test_parse_params_names_the_given_source() -> None:
    with pytest.raises(ParamsError, match=r"^params \+ overrides: split\.test_size = 1\.5: "):
        parse_params(edited(("split", "test_size"), 1.5), source="params + overrides")
    assert parse_params(GOOD_PARAMS, source="x") == Params.model_validate(GOOD_PARAMS)
