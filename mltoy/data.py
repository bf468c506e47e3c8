"""The iris data set: its schema, a reproducible CSV form, and validation on the way in."""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

from mltoy.errors import DataError
from mltoy.io import atomic_write_text

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
TARGET = "species"
COLUMNS = (*FEATURES, TARGET)

# 15 significant digits: any decimal of up to 15 digits survives the round trip through a
# float unchanged, so 5.1 is written as 5.1 and the same frame always gives the same bytes.
_FLOAT_FORMAT = "%.15g"


def iris_frame() -> pd.DataFrame:
    """The copy of iris that scikit-learn ships, so that no download is needed."""
    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=list(FEATURES))
    frame[TARGET] = iris.target_names[iris.target]
    return frame


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write atomically and reproducibly: the same frame gives the same bytes everywhere."""
    text = frame.to_csv(index=False, float_format=_FLOAT_FORMAT, lineterminator="\n")
    atomic_write_text(path, text)


def write_raw(path: str | Path) -> None:
    write_csv(iris_frame(), path)


def read_dataset(path: str | Path) -> pd.DataFrame:
    """Read a CSV of FEATURES and TARGET, raising DataError on anything a stage can't use.

    Problems in a cell are reported by file line (the header is line 1). Other columns are
    dropped; features come back as floats.
    """
    source = Path(path)
    try:
        # All text first: the checks below can then report the cell exactly as written.
        frame = pd.read_csv(source, dtype=str, skip_blank_lines=False, encoding="utf-8")
    except OSError as error:
        raise DataError(f"{source}: cannot read: {error.strerror}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: has no rows (the file is empty)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{source}: not a readable CSV file: {error}") from None
    if frame.empty:
        raise DataError(f"{source}: has no rows (only a header)")
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns))})"
        )
    frame = frame[list(COLUMNS)]
    blank = _first_cell(frame.isna())
    if blank is not None:
        row, column = blank
        raise DataError(f"{source}: line {_line(row)}: column '{column}' has a missing value")
    numbers = frame[list(FEATURES)].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = _first_cell(~np.isfinite(numbers))
    if bad is not None:
        row, column = bad
        raise DataError(
            f"{source}: line {_line(row)}: column '{column}' has value "
            f"{frame.at[row, column]!r}; expected a finite number"
        )
    classes = sorted(frame[TARGET].unique())
    if len(classes) < 2:
        raise DataError(
            f"{source}: column '{TARGET}' needs at least 2 classes, found {len(classes)}: "
            f"{', '.join(classes)}"
        )
    return numbers.assign(**{TARGET: frame[TARGET]})


# The raw file and the prepared splits share one schema, hence one reader.
read_raw = read_dataset


def _first_cell(mask: pd.DataFrame) -> tuple[int, str] | None:
    """(row, column) of the first True cell, in reading order."""
    hits = np.argwhere(mask.to_numpy())
    if len(hits) == 0:
        return None
    row, column = hits[0]
    return int(row), str(mask.columns[column])


def _line(row: int) -> int:
    """The file line of a data row: the header is line 1 and blank lines count as rows."""
    return row + 2
