import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mltoy.data import FEATURES, TARGET
from mltoy.errors import DataError
from mltoy.params import TrainParams
from mltoy.train import fit_model, stage_train

from .helpers import replace_line

TRAIN = TrainParams(C=0.5, max_iter=200, seed=3)


def test_model_scales_then_classifies_with_the_params(iris: pd.DataFrame) -> None:
    model = fit_model(iris, TRAIN)
    assert isinstance(model, Pipeline)
    scale, classify = (step for _, step in model.steps)
    assert isinstance(scale, StandardScaler)
    assert isinstance(classify, LogisticRegression)
    assert (classify.C, classify.max_iter, classify.random_state) == (0.5, 200, 3)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    assert (model.predict(iris[list(FEATURES)]) == iris[TARGET]).mean() > 0.9


def test_fit_is_deterministic(iris: pd.DataFrame) -> None:
    first, second = fit_model(iris, TRAIN), fit_model(iris, TRAIN)
    features = iris[list(FEATURES)]
    np.testing.assert_array_equal(first.predict_proba(features), second.predict_proba(features))


def test_stage_writes_a_loadable_model_with_identical_bytes(raw_csv: Path, tmp_path: Path) -> None:
    first = stage_train(raw_csv, tmp_path / "1/model.joblib", TRAIN)
    second = stage_train(raw_csv, tmp_path / "2/model.joblib", TRAIN)
    assert first == second
    assert first["train_rows"] == 150 and 1 <= first["iterations"] <= 200
    assert (tmp_path / "1/model.joblib").read_bytes() == (tmp_path / "2/model.joblib").read_bytes()
    model = joblib.load(tmp_path / "1/model.joblib")
    assert isinstance(model, Pipeline)


def test_stage_with_bad_data_keeps_the_old_model(raw_csv: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.joblib"
    model.write_bytes(b"old model")
    replace_line(raw_csv, 2, "5.1,3.5,x,0.2,setosa")
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(raw_csv))}: line 2: column 'petal_length'"
    ):
        stage_train(raw_csv, model, TRAIN)
    assert model.read_bytes() == b"old model"
