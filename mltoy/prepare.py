"""The prepare stage: split the raw data into train and test sets that share every class."""

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from mltoy.data import TARGET, read_dataset, write_csv
from mltoy.errors import DataError
from mltoy.params import SplitParams


def split_dataset(frame: pd.DataFrame, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified split, so both sets keep the class balance; fails unless each has every class.

    A class missing from train cannot be predicted, one missing from test cannot be scored.
    """
    counts = frame[TARGET].value_counts()
    single = counts.index[counts < 2]
    if len(single):
        raise DataError(
            f"class '{single[0]}' has only 1 row; a stratified split needs at least 2 per class"
        )
    try:
        train, test = train_test_split(
            frame, test_size=params.test_size, random_state=params.seed, stratify=frame[TARGET]
        )
    except ValueError as error:  # the sizes cannot hold every class
        raise DataError(
            f"cannot split {len(frame)} rows with split.test_size = {params.test_size}: {error}"
        ) from None
    for name, part in (("train", train), ("test", test)):
        absent = sorted(set(counts.index) - set(part[TARGET]))
        if absent:
            raise DataError(
                f"class '{absent[0]}' has no rows in the {name} set; "
                f"change split.test_size (now {params.test_size})"
            )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def stage_prepare(
    raw_path: str | Path, train_path: str | Path, test_path: str | Path, params: SplitParams
) -> dict[str, int]:
    frame = read_dataset(raw_path)
    try:
        train, test = split_dataset(frame, params)
    except DataError as error:
        raise DataError(f"{raw_path}: {error}") from None
    write_csv(train, train_path)
    write_csv(test, test_path)
    return {"train_rows": len(train), "test_rows": len(test)}
