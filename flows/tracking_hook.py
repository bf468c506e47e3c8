"""The flows' one door to MLflow: open when MLFLOW_TRACKING_URI is set, shut otherwise.

Shut (the embedded default, `make run`, a stack without compose.mlflow.yaml), these
functions return at once and mlflow is never imported: no import cost, no dependency on
an MLflow server. Open, they hand over to flows/tracking.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.pipeline_run import PipelineRun

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def tracking_enabled() -> bool:
    """An empty value (what a deployment passes without MLflow) counts as unset."""
    return bool(os.environ.get(TRACKING_URI_ENV, "").strip())


def track(
    run: PipelineRun, stages: Mapping[str, str], metrics: Mapping[str, Any], published: bool
) -> dict[str, Any] | None:
    """Record a completed pipeline run in MLflow; None when tracking is off.

    `published`: its results commit was pushed to the commit's results ref
    (flows.gitops.finish)."""
    if not tracking_enabled():
        return None
    from flows.tracking import track_run

    return track_run(run, dict(stages), dict(metrics), published)


def track_sweep(
    option: str, metric: str, mode: str, rows: list[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """Record a finished sweep in MLflow (a run, a nested run per trial); None when off."""
    if not tracking_enabled():
        return None
    from flows.tracking import track_sweep_runs

    return track_sweep_runs(option, metric, mode, rows)


def track_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook: a failed flow run becomes a FAILED MLflow run (no model)."""
    if not tracking_enabled():
        return
    from prefect.logging.loggers import flow_run_logger

    from flows.tracking import log_failed_run

    log_failed_run(flow.name, state.message or state.name, flow_run_logger(flow_run, flow))
