import re
from pathlib import Path

import pandas as pd
import pytest

from mltoy.data import TARGET, read_raw
from mltoy.errors import DataError
from mltoy.params import SplitParams
from mltoy.prepare import split_dataset, stage_prepare

from .helpers import snapshot

SPLIT = SplitParams(test_size=0.3, seed=42)


def three_classes(rows_of_c: int) -> pd.DataFrame:
    """Classes a and b with 50 rows each, c with `rows_of_c`."""
    n = 100 + rows_of_c
    return pd.DataFrame(
        {
            "sepal_length": range(n),
            TARGET: ["a"] * 50 + ["b"] * 50 + ["c"] * rows_of_c,
        }
    )


def test_split_sizes_are_stratified(iris: pd.DataFrame) -> None:
    train, test = split_dataset(iris, SPLIT)
    assert (len(train), len(test)) == (105, 45)
    assert set(train[TARGET].value_counts()) == {35}
    assert set(test[TARGET].value_counts()) == {15}


def test_split_is_a_partition(iris: pd.DataFrame) -> None:
    train, test = split_dataset(iris, SPLIT)
    together = pd.concat([train, test]).sort_values(list(iris.columns)).reset_index(drop=True)
    expected = iris.sort_values(list(iris.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, expected)


def test_split_depends_only_on_the_seed(iris: pd.DataFrame) -> None:
    first, again = split_dataset(iris, SPLIT), split_dataset(iris, SPLIT)
    other = split_dataset(iris, SplitParams(test_size=0.3, seed=7))
    pd.testing.assert_frame_equal(first[1], again[1])
    assert not first[1].equals(other[1])


def test_a_class_with_one_row_cannot_be_stratified() -> None:
    with pytest.raises(DataError, match=r"^class 'c' has only 1 row; a stratified split needs"):
        split_dataset(three_classes(1), SPLIT)


def test_a_class_absent_from_the_test_set_is_an_error() -> None:
    with pytest.raises(
        DataError,
        match=r"^class 'c' has no rows in the test set; change split\.test_size \(now 0\.02\)$",
    ):
        split_dataset(three_classes(2), SplitParams(test_size=0.02, seed=0))


def test_a_class_absent_from_the_train_set_is_an_error() -> None:
    with pytest.raises(DataError, match=r"^class 'c' has no rows in the train set"):
        split_dataset(three_classes(2), SplitParams(test_size=0.95, seed=0))


def test_a_test_set_smaller_than_the_classes_is_an_error(iris: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"^cannot split 150 rows with split\.test_size = 0\.01: "):
        split_dataset(iris, SplitParams(test_size=0.01, seed=0))


def test_stage_writes_identical_bytes_for_identical_params(raw_csv: Path, tmp_path: Path) -> None:
    first = stage_prepare(raw_csv, tmp_path / "1/train.csv", tmp_path / "1/test.csv", SPLIT)
    second = stage_prepare(raw_csv, tmp_path / "2/train.csv", tmp_path / "2/test.csv", SPLIT)
    assert first == second == {"train_rows": 105, "test_rows": 45}
    assert snapshot(tmp_path / "1") == snapshot(tmp_path / "2")
    assert len(read_raw(tmp_path / "1/test.csv")) == 45


def test_stage_failure_names_the_raw_file_and_writes_nothing(raw_csv: Path, tmp_path: Path) -> None:
    lines = raw_csv.read_text().splitlines(keepends=True)
    raw_csv.write_text("".join(lines[:101]) + lines[-1])  # header, 50 + 50 rows, 1 virginica
    out = tmp_path / "out"
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(raw_csv))}: class 'virginica' has only 1 row"
    ):
        stage_prepare(raw_csv, out / "train.csv", out / "test.csv", SPLIT)
    assert not out.exists()
