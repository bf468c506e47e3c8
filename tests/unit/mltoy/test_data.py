from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mltoy.data import FEATURES, TARGET, read_raw, write_csv, write_raw
from mltoy.errors import DataError

from .helpers import replace_line


def read_error(path: Path) -> str:
    with pytest.raises(DataError) as caught:
        read_raw(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_iris_frame_is_the_classic_data_set(iris: pd.DataFrame) -> None:
    assert list(iris.columns) == [*FEATURES, TARGET]
    assert iris.shape == (150, 5)
    assert iris[TARGET].value_counts().to_dict() == {
        "setosa": 50,
        "versicolor": 50,
        "virginica": 50,
    }
    assert iris.iloc[0].tolist() == [5.1, 3.5, 1.4, 0.2, "setosa"]


def test_raw_csv_is_plain_and_byte_identical_each_time(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b" / "a.csv"
    write_raw(first)
    write_raw(second)
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data.startswith(
        b"sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa\n"
    )
    assert b"\r" not in data
    assert data.count(b"\n") == 151


def test_read_returns_what_was_written(raw_csv: Path, iris: pd.DataFrame) -> None:
    frame = read_raw(raw_csv)
    pd.testing.assert_frame_equal(frame, iris, check_dtype=False)
    assert all(frame[column].dtype == "float64" for column in FEATURES)


def test_extra_columns_are_dropped(tmp_path: Path, iris: pd.DataFrame) -> None:
    path = tmp_path / "extra.csv"
    write_csv(iris.assign(note="x"), path)
    assert list(read_raw(path).columns) == [*FEATURES, TARGET]


def drop_columns(*names: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        frame = pd.read_csv(path)
        frame.drop(columns=list(names)).to_csv(path, index=False)

    return edit


def set_line(line: int, text: str) -> Callable[[Path], None]:
    return lambda path: replace_line(path, line, text)


def set_text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


HEADER = "sepal_length,sepal_width,petal_length,petal_width,species\n"

BAD_DATA = {
    "empty file": (set_text(""), "has no rows (the file is empty)"),
    "header only": (set_text(HEADER), "has no rows (only a header)"),
    "missing column": (drop_columns(TARGET), "missing required column(s) species (found: "),
    "missing columns": (
        drop_columns("petal_width", TARGET),
        "missing required column(s) petal_width, species (found: sepal_length, ",
    ),
    "non-numeric value": (
        set_line(3, "4.9,abc,1.4,0.2,setosa"),
        "line 3: column 'sepal_width' has value 'abc'; expected a finite number",
    ),
    "infinite value": (
        set_line(5, "4.9,3.0,1.4,inf,setosa"),
        "line 5: column 'petal_width' has value 'inf'; expected a finite number",
    ),
    "empty cell": (
        set_line(4, "4.9,3.0,,0.2,setosa"),
        "line 4: column 'petal_length' has a missing value",
    ),
    "NaN": (
        set_line(4, "4.9,3.0,NaN,0.2,setosa"),
        "line 4: column 'petal_length' has a missing value",
    ),
    "missing class": (
        set_line(7, "4.9,3.0,1.4,0.2,"),
        "line 7: column 'species' has a missing value",
    ),
    "blank line": (set_line(9, ""), "line 9: column 'sepal_length' has a missing value"),
    "too many fields": (
        set_line(6, "4.9,3.0,1.4,0.2,setosa,9"),
        "not a readable CSV file: Error tokenizing data. C error: Expected 5 fields in line 6",
    ),
    "one class": (
        set_text(HEADER + "5.1,3.5,1.4,0.2,setosa\n4.9,3,1.4,0.2,setosa\n"),
        "column 'species' needs at least 2 classes, found 1: setosa",
    ),
}


@pytest.mark.parametrize(("edit", "expected"), BAD_DATA.values(), ids=BAD_DATA.keys())
def test_bad_data_is_reported_with_file_and_place(
    raw_csv: Path, edit: Callable[[Path], None], expected: str
) -> None:
    edit(raw_csv)
    assert read_error(raw_csv).startswith(f"{raw_csv}: {expected}")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(HEADER.encode() + b"\xff\xfe,1,2,3,x\n")
    assert read_error(path).startswith(f"{path}: not a readable CSV file: 'utf-8' codec")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    assert read_error(path) == f"{path}: cannot read: No such file or directory"


def test_raw_data_matches_the_checksum_dvc_tracks(tmp_path, repo_root):
    """A fresh clone writes data/raw/iris.csv from scikit-learn: it must be DVC's file."""
    import hashlib

    import yaml

    from mltoy.data import write_raw

    write_raw(tmp_path / "iris.csv")
    (tracked,) = yaml.safe_load((repo_root / "data/raw/iris.csv.dvc").read_text())["outs"]
    assert hashlib.md5((tmp_path / "iris.csv").read_bytes()).hexdigest() == tracked["md5"]
