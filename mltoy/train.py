"""The train stage: fit the classifier on the prepared train set."""

from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mltoy.data import FEATURES, TARGET, read_dataset
from mltoy.io import atomic_path
from mltoy.params import TrainParams


def fit_model(train: pd.DataFrame, params: TrainParams) -> Pipeline:
    """Scaling is part of the model, so evaluation and serving apply exactly the same one."""
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "classify",
                LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed),
            ),
        ]
    )
    return model.fit(train[list(FEATURES)], train[TARGET])


def stage_train(
    train_path: str | Path, model_path: str | Path, params: TrainParams
) -> dict[str, int]:
    train = read_dataset(train_path)
    model = fit_model(train, params)
    with atomic_path(model_path) as temporary:
        joblib.dump(model, temporary)
    return {"train_rows": len(train), "iterations": int(model[-1].n_iter_.max())}
