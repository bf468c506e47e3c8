"""Metrics out of the workspace and into Prefect: logs and an artifact, for both options."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

ARTIFACT_KEY = "mltoy-metrics"


def read_metrics(project_dir: Path, files: Iterable[str]) -> dict[str, Any]:
    """The pipeline's metrics files (JSON), merged (a key clash is an error)."""
    merged: dict[str, Any] = {}
    for relpath in files:
        values = json.loads((project_dir / relpath).read_text())
        clash = merged.keys() & values.keys()
        if clash:
            raise ValueError(f"{relpath}: metric(s) {sorted(clash)} defined twice")
        merged.update(values)
    return merged


@task(name="metrics summary")
def metrics_summary(metrics: Mapping[str, Any]) -> None:
    logger = get_run_logger()
    for name, value in metrics.items():
        logger.info("metric %s = %s", name, value)


def publish_metrics(metrics: Mapping[str, Any], option: str) -> None:
    """One table artifact per flow run, under a stable key so the UI shows its history."""
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=[{"metric": name, "value": value} for name, value in metrics.items()],
        description=f"Evaluation metrics of the mltoy pipeline ({option}).",
    )
