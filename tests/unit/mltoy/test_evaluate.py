import json
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from mltoy.data import TARGET
from mltoy.errors import DataError
from mltoy.evaluate import compute_metrics, confusion_rows, stage_evaluate
from mltoy.params import EvaluateParams, SplitParams, TrainParams
from mltoy.prepare import split_dataset
from mltoy.train import fit_model, stage_train

from .helpers import snapshot

MACRO = EvaluateParams(average="macro")


@pytest.fixture(scope="module")
def split(iris: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_dataset(iris, SplitParams(test_size=0.3, seed=42))


@pytest.fixture(scope="module")
def model(split: tuple[pd.DataFrame, pd.DataFrame]) -> Pipeline:
    return fit_model(split[0], TrainParams(C=1.0, max_iter=500, seed=42))


@pytest.fixture
def test_csv(tmp_path: Path, split: tuple[pd.DataFrame, pd.DataFrame]) -> Path:
    path = tmp_path / "test.csv"
    split[1].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("average", ["macro", "weighted", "micro"])
def test_metrics_keys_follow_the_average(
    model: Pipeline, split: tuple[pd.DataFrame, pd.DataFrame], average: str
) -> None:
    metrics = compute_metrics(model, split[1], EvaluateParams(average=average))
    assert list(metrics) == [
        "accuracy",
        f"f1_{average}",
        f"precision_{average}",
        f"recall_{average}",
        "n_test",
    ]
    assert metrics["n_test"] == 45 and isinstance(metrics["n_test"], int)
    scores = [value for key, value in metrics.items() if key != "n_test"]
    assert all(isinstance(value, float) and 0 <= value <= 1 for value in scores)
    assert all(round(value, 6) == value for value in scores)
    assert metrics["accuracy"] > 0.85


def test_confusion_rows_pair_each_test_sample_with_its_prediction(
    model: Pipeline, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rows = confusion_rows(model, split[1])
    assert list(rows.columns) == ["actual", "predicted"]
    assert rows["actual"].tolist() == split[1][TARGET].tolist()
    assert set(rows["predicted"]) <= {"setosa", "versicolor", "virginica"}
    accuracy = compute_metrics(model, split[1], MACRO)["accuracy"]
    assert (rows["actual"] == rows["predicted"]).mean() == pytest.approx(accuracy, abs=1e-6)


def test_stage_writes_metrics_and_plot_data(tmp_path: Path, raw_csv: Path, test_csv: Path) -> None:
    stage_train(raw_csv, tmp_path / "model.joblib", TrainParams(C=1.0, max_iter=500, seed=42))
    out = tmp_path / "reports"
    metrics = stage_evaluate(
        tmp_path / "model.joblib", test_csv, out / "metrics.json", out / "plots/c.csv", MACRO
    )
    text = (out / "metrics.json").read_text()
    assert text == json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    assert json.loads(text) == metrics
    plot = (out / "plots/c.csv").read_text()
    assert plot.startswith("actual,predicted\n") and plot.count("\n") == 46
    first = snapshot(out)
    assert (
        stage_evaluate(
            tmp_path / "model.joblib", test_csv, out / "metrics.json", out / "plots/c.csv", MACRO
        )
        == metrics
    )
    assert snapshot(out) == first


@pytest.mark.parametrize(
    ("model_bytes", "expected"),
    [
        (None, "cannot load the model: No such file or directory"),
        (b"not a pickle", "cannot load the model: "),
        (b"", "cannot load the model: EOFError"),
    ],
)
def test_missing_or_damaged_model_is_a_data_error_and_writes_nothing(
    tmp_path: Path, test_csv: Path, model_bytes: bytes | None, expected: str
) -> None:
    model_path = tmp_path / "model.joblib"
    if model_bytes is not None:
        model_path.write_bytes(model_bytes)
    out = tmp_path / "reports"
    with pytest.raises(DataError) as caught:
        stage_evaluate(model_path, test_csv, out / "m.json", out / "c.csv", MACRO)
    assert str(caught.value).startswith(f"{model_path}: {expected}")
    assert not out.exists()


def test_a_file_holding_something_else_is_not_a_model(tmp_path: Path, test_csv: Path) -> None:
    model_path = tmp_path / "model.joblib"
    joblib.dump({"weights": [1, 2]}, model_path)
    with pytest.raises(DataError, match=r"holds a dict, not a model$"):
        stage_evaluate(model_path, test_csv, tmp_path / "m.json", tmp_path / "c.csv", MACRO)
    assert not (tmp_path / "m.json").exists()
