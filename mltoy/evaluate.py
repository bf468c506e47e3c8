"""The evaluate stage: score the model on the test set, for DVC's metrics and plots."""

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from mltoy.data import FEATURES, TARGET, read_dataset, write_csv
from mltoy.errors import DataError
from mltoy.io import atomic_write_text
from mltoy.params import EvaluateParams

_DIGITS = 6  # enough to compare runs, few enough that metrics.json diffs stay readable


@runtime_checkable
class Classifier(Protocol):
    def predict(self, features: pd.DataFrame) -> np.ndarray: ...


def compute_metrics(
    model: Classifier, test: pd.DataFrame, params: EvaluateParams
) -> dict[str, float]:
    actual = test[TARGET]
    predicted = _predict(model, test)
    precision, recall, f1, _ = precision_recall_fscore_support(
        actual, predicted, average=params.average, zero_division=0
    )
    scores = {
        "accuracy": accuracy_score(actual, predicted),
        f"f1_{params.average}": f1,
        f"precision_{params.average}": precision,
        f"recall_{params.average}": recall,
    }
    metrics = {name: round(float(value), _DIGITS) for name, value in scores.items()}
    metrics["n_test"] = len(test)
    return metrics


def confusion_rows(model: Classifier, test: pd.DataFrame) -> pd.DataFrame:
    """One (actual, predicted) row per sample: the input of DVC's `confusion` plot template."""
    return pd.DataFrame({"actual": test[TARGET].to_numpy(), "predicted": _predict(model, test)})


def stage_evaluate(
    model_path: str | Path,
    test_path: str | Path,
    metrics_path: str | Path,
    plots_path: str | Path,
    params: EvaluateParams,
) -> dict[str, float]:
    model = _load_model(model_path)
    test = read_dataset(test_path)
    metrics = compute_metrics(model, test, params)
    confusion = confusion_rows(model, test)
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    write_csv(confusion, plots_path)
    return metrics


def _predict(model: Classifier, test: pd.DataFrame) -> np.ndarray:
    return model.predict(test[list(FEATURES)])


def _load_model(path: str | Path) -> Classifier:
    try:
        model: Any = joblib.load(path)
    except Exception as error:  # unpickling a damaged file can raise almost anything
        reason = (
            error.strerror
            if isinstance(error, OSError) and error.strerror
            else f"{type(error).__name__}: {error}"
        )
        raise DataError(f"{path}: cannot load the model: {reason}") from None
    if not isinstance(model, Classifier):
        raise DataError(f"{path}: holds a {type(model).__name__}, not a model")
    return model
