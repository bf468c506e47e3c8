"""A parameter sweep: DVC's `-S` grid, one child run per trial, one leaderboard.

The grid is expanded and every trial's params validated before any trial starts
(flows/sweep_grid.py): an invalid trial is a Failed `trial` task with a one-line reason
and costs no run. Each valid trial is a child flow run of option A or B:

- in the stack, a run of the trial deployment (`option-a-trial`, `option-b-trial` in
  prefect.yaml) through `run_deployment`, linked under the sweep's run: its own
  container, clone of the sweep's commit, logs and artifacts;
- locally (`python -m flows.cli sweep`), the option's flow as a subflow, on its own copy
  of the project that shares the project's DVC cache (flows/trial_workspace.py).

At most `max_parallel` trials run at once (the trial deployments' own concurrency limit
bounds all sweeps together; docs/sweeps.md says why). Trials never publish results to
Git (`publish_results` off): a sweep explores, a push to main records. As trials finish,
a progress artifact moves and the leaderboard (a table, best first by `metric` and
`mode`) gets a new version; at the end the best trial (markdown) joins them, and with MLflow
on the sweep is one MLflow run with a nested run per trial (flows/tracking.py; trials
themselves are not tracked: concurrent trials would race on the registry's champion).
The sweep Fails only when every trial failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Failed

from flows import workspace
from flows.dvc_output import RAN
from flows.git_workspace import head
from flows.reporting import ARTIFACT_KEY, STAGES_KEY
from flows.sweep_grid import DEFAULT_GRID, MODES, SweepError, Trial, best, one_line, plan, rank
from flows.tracking_hook import track_sweep

# The child runs' deployments, by option (prefect.yaml).
TRIAL_DEPLOYMENTS = {
    "a": "option-a-dvc-repro/option-a-trial",
    "b": "option-b-stage-dag/option-b-trial",
}
LEADERBOARD_KEY = "mltoy-sweep-leaderboard"
BEST_KEY = "mltoy-sweep-best"
PROGRESS_KEY = "mltoy-sweep-progress"
COMPLETED = "Completed"
TRIAL_FAILED = "Failed"


class SweepFailedError(RuntimeError):
    """Every trial failed."""


def _row(trial: Trial, state: str, **fields: Any) -> dict[str, Any]:
    return {
        "trial": trial.number,
        "overrides": trial.label,
        "swept": trial.swept,
        "state": state,
        "reason": fields.get("reason", ""),
        "metrics": fields.get("metrics", {}),
        "stages": fields.get("stages", {}),
        "duration_s": fields.get("duration_s"),
        "run": fields.get("run", ""),
    }


def _finished(trial: Trial, state: str, reason: str, **fields: Any) -> Any:
    """The trial's row; the `trial` task ends Failed (with the row) when the trial did."""
    row = _row(trial, state, reason=reason, **fields)
    if state != COMPLETED:
        return Failed(message=f"trial {trial.number} ({trial.label}): {reason}", data=row)
    return row


def _child_artifacts(flow_run_id: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The metrics and stages a child run published (flows/reporting.py)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY, STAGES_KEY])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    tables = {a.key: json.loads(a.data) if isinstance(a.data, str) else a.data for a in found}
    metrics = {r["metric"]: r["value"] for r in tables.get(ARTIFACT_KEY, [])}
    stages = {r["stage"]: r["outcome"] for r in tables.get(STAGES_KEY, [])}
    return metrics, stages


def _deployment_trial(trial: Trial, option: str, commit: str | None) -> Any:
    from prefect.deployments import run_deployment
    from prefect.utilities.urls import url_for

    parameters: dict[str, Any] = {"params": trial.params, "publish_results": False}
    if commit:
        parameters["commit"] = commit  # every trial runs the sweep's own commit
    child = run_deployment(
        TRIAL_DEPLOYMENTS[option],
        parameters=parameters,
        tags=["sweep-trial"],
        as_subflow=True,
        poll_interval=2,
    )
    state = child.state.name if child.state else "Unknown"
    metrics, stages = _child_artifacts(child.id) if state == COMPLETED else ({}, {})
    duration = child.total_run_time.total_seconds() if child.total_run_time else None
    return _finished(
        trial,
        state,
        "" if state == COMPLETED else one_line(child.state.message if child.state else ""),
        metrics=metrics,
        stages=stages,
        duration_s=round(duration, 1) if duration is not None else None,
        run=url_for("flow-run", obj_id=child.id) or str(child.id),
    )


def _local_trial(trial: Trial, option: str, project: Path) -> Any:
    from flows.option_a import pipeline_a
    from flows.option_b import pipeline_b
    from flows.trial_workspace import trial_workspace

    pipeline = pipeline_a if option == "a" else pipeline_b
    started = time.monotonic()
    with trial_workspace(project) as copy:
        state = pipeline(
            project_dir=str(copy), params=trial.params, show_metrics=False, return_state=True
        )
    duration = round(time.monotonic() - started, 1)
    run = str(state.state_details.flow_run_id)
    if not state.is_completed():
        reason = one_line(state.message or "")
        return _finished(trial, state.name, reason, duration_s=duration, run=run)
    result = state.result()
    fields = {"metrics": result["metrics"], "stages": result["stages"]}
    return _finished(trial, COMPLETED, "", duration_s=duration, run=run, **fields)


# Never cached: a trial is a run to start, not a value to reuse.
@task(name="trial", task_run_name="trial {trial.number}: {trial.label}", cache_policy=NO_CACHE)
def run_trial(trial: Trial, option: str, commit: str | None, local_project: str | None) -> Any:
    """Run one trial as a child flow run; its leaderboard row (Failed with the row when
    the trial failed; an invalid trial fails here, before any run starts)."""
    if trial.error is not None:
        get_run_logger().error("invalid params, not started: %s", trial.error)
        return _finished(trial, TRIAL_FAILED, trial.error)
    if local_project is not None:
        return _local_trial(trial, option, Path(local_project))
    return _deployment_trial(trial, option, commit)


def table_rows(rows: Sequence[Mapping[str, Any]], metric: str, mode: str) -> list[dict[str, Any]]:
    """The leaderboard as table rows: rank, trial, swept values, every metric, state,
    stages ran and skipped, duration, the child run."""
    metric_names = sorted({name for row in rows for name in row["metrics"]})
    swept_names = list(dict.fromkeys(name for row in rows for name in row["swept"]))
    table = []
    for place, row in enumerate(rank(rows, metric, mode), start=1):
        ran = [name for name, outcome in row["stages"].items() if outcome == RAN]
        skipped = [name for name, outcome in row["stages"].items() if outcome != RAN]
        table.append(
            {
                "rank": place if row["state"] == COMPLETED else None,
                "trial": row["trial"],
                **{name: row["swept"].get(name) for name in swept_names},
                **{name: row["metrics"].get(name) for name in metric_names},
                "state": row["state"],
                "reason": row["reason"],
                "stages ran": ", ".join(ran),
                "stages skipped": ", ".join(skipped),
                "duration (s)": row["duration_s"],
                "run": row["run"],
            }
        )
    return table


def best_markdown(rows: Sequence[Mapping[str, Any]], metric: str, mode: str, option: str) -> str:
    winner = best(rows, metric, mode)
    done = sum(row["state"] == COMPLETED for row in rows)
    lines = [f"# Sweep: best trial by {metric} ({mode}), option {option.upper()}", ""]
    if winner is None:
        return "\n".join([*lines, f"No trial completed ({len(rows)} failed).", ""])
    lines += [
        f"**Trial {winner['trial']}**: `{winner['overrides']}`: "
        f"{metric} = {winner['metrics'][metric]}",
        "",
        f"Run: {winner['run']}",
        "",
        f"{done} of {len(rows)} trials completed. To make it the project's params: "
        f"`dvc exp run {' '.join(f'-S {o}' for o in winner['overrides'].split())}` "
        "(or edit params.yaml) and push.",
        "",
    ]
    return "\n".join(lines)


def _check(option: str, mode: str, max_parallel: int) -> None:
    if option not in TRIAL_DEPLOYMENTS:
        raise SweepError(f"option = {option!r}: must be one of {', '.join(TRIAL_DEPLOYMENTS)}")
    if mode not in MODES:
        raise SweepError(f"mode = {mode!r}: must be one of {', '.join(MODES)}")
    if max_parallel < 1:
        raise SweepError(f"max_parallel = {max_parallel}: must be an integer >= 1")


@flow(
    name="sweep",
    description="A parameter sweep: DVC's -S grid, one child run of option A or B per trial, "
    "a leaderboard.",
    log_prints=True,
)
def sweep(
    overrides: list[str] = list(DEFAULT_GRID),  # noqa: B006 (Prefect shows the default)
    option: Literal["a", "b"] = "a",
    metric: str = "accuracy",
    mode: Literal["max", "min"] = "max",
    max_parallel: int = 2,
    project_dir: str | None = None,
    local: bool = False,
) -> list[dict[str, Any]]:
    """Run every trial of the grid `overrides` (DVC's `-S` syntax: `train.C=0.1,1`);
    return the leaderboard's rows, best first.

    `local`: trials run here as subflows, one at a time (DVC's in-process API is not
    thread-safe), each on its own copy of the project (the CLI); otherwise as runs of the
    option's trial deployment, at most `max_parallel` at once.
    """
    logger = get_run_logger()
    _check(option, mode, max_parallel)
    if local:
        max_parallel = 1
    project = workspace.resolve_project(project_dir)
    trials = plan(project, overrides)
    source = head(project)
    commit = source.sha if source is not None and not source.dirty else None
    invalid = sum(t.error is not None for t in trials)
    logger.info(
        "%d trial(s) of option %s, %d invalid, at most %d at once%s",
        len(trials),
        option.upper(),
        invalid,
        max_parallel,
        f", commit {commit}" if commit else "",
    )
    progress = create_progress_artifact(
        0.0, key=PROGRESS_KEY, description=f"0 of {len(trials)} trials finished"
    )
    local_project = str(project) if local else None
    rows: list[dict[str, Any]] = []
    waiting = list(trials)
    running: dict[PrefectFuture[Any], Trial] = {}
    while waiting or running:
        while waiting and len(running) < max_parallel:
            trial = waiting.pop(0)
            running[run_trial.submit(trial, option, commit, local_project)] = trial
        finished = next(iter(as_completed(list(running))))
        trial = running.pop(finished)
        row = finished.result(raise_on_failure=False)
        if not isinstance(row, dict):  # the task itself broke (the API, a bug): say so
            row = _row(trial, TRIAL_FAILED, reason=one_line(f"{type(row).__name__}: {row}"))
        rows.append(row)
        logger.info(
            "trial %d (%s): %s%s",
            row["trial"],
            row["overrides"],
            row["state"],
            f", {metric} = {row['metrics'].get(metric)}"
            if row["state"] == COMPLETED
            else f": {row['reason']}",
        )
        update_progress_artifact(
            progress,
            100.0 * len(rows) / len(trials),
            description=f"{len(rows)} of {len(trials)} trials finished; last: trial "
            f"{row['trial']} {row['state']}",
        )
        # A new version of the table per finished trial: the UI shows the latest.
        create_table_artifact(
            key=LEADERBOARD_KEY,
            table=table_rows(rows, metric, mode),
            description=f"Sweep leaderboard, option {option.upper()}: best {metric} ({mode}) "
            f"first; {len(rows)} of {len(trials)} trials finished.",
        )
    create_markdown_artifact(
        key=BEST_KEY, markdown=best_markdown(rows, metric, mode, option), description="Best trial"
    )
    ranked = [dict(row) for row in rank(rows, metric, mode)]
    track_sweep(option, metric, mode, ranked)
    if not any(row["state"] == COMPLETED for row in rows):
        first = ranked[0]
        raise SweepFailedError(
            f"all {len(rows)} trials failed; first: trial {first['trial']} "
            f"({first['overrides']}): {first['reason']}"
        )
    return ranked
