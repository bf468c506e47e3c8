"""Option A, "Prefect operates DVC pipeline": one task runs `dvc repro`.

DVC owns the DAG, decides what is up to date and caches outputs; Prefect adds runs,
logs, retries, schedules and the UI around it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import task_run

from flows.dvc_lock import forget_unrestorable_outputs
from flows.dvc_output import SKIPPED, failed_on_bad_input, remote_unreachable, stage_outcomes
from flows.dvc_remote import (
    missing_bucket,
    missing_bucket_message,
    probe_missing_bucket,
    project_config,
    project_remote,
)
from flows.pipeline_run import PipelineRun, RunResult
from flows.retry import BACKOFF, retry_unless_bad_input
from flows.shell import stream
from flows.tracking_hook import track_failure


class DvcCommandError(RuntimeError):
    """A DVC command exited non-zero; the message carries its last error line.

    `bad_input`: a stage rejected its params or data (its command exited EXIT_BAD_INPUT,
    as DVC reports it: see flows.dvc_output.failed_on_bad_input), so a retry is futile.
    """

    def __init__(self, message: str, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


def _dvc(project: Path, *args: str) -> tuple[int, list[str]]:
    logger = get_run_logger()
    logger.info("$ dvc %s", " ".join(args))
    return stream([sys.executable, "-m", "dvc", *args], project, logger.info)


def command_error(
    command: str, code: int, lines: list[str], project: Path | None = None
) -> DvcCommandError:
    """Name DVC's error and, before it, the failing stage's own last words; when the
    remote could not be reached, say which remote."""
    output = [line for line in lines if line.strip()]
    status = f"exited with {code}" if code else "logged an error (exit code 0)"
    config = project_config(project) if project is not None else {}
    for line in output:
        bucket = line.startswith("ERROR") and missing_bucket(line, config)
        if bucket:
            message = missing_bucket_message(bucket, config)
            return DvcCommandError(f"dvc {command} {status}: {message}: {line}", bad_input=True)
    # A pull from a missing GCS bucket says only "missing data": ask the remote once.
    missing_data = [line for line in output if line.startswith("ERROR") and "missing data" in line]
    bucket = probe_missing_bucket(project) if missing_data and project is not None else None
    if bucket:
        message = missing_bucket_message(bucket, config)
        return DvcCommandError(
            f"dvc {command} {status}: {message}: {missing_data[0]}", bad_input=True
        )
    if project is not None and remote_unreachable(output):
        error = next(line for line in reversed(output) if line.startswith("ERROR"))
        return DvcCommandError(
            f"dvc {command} {status}: remote {project_remote(project)} is unreachable: {error}"
        )
    errors = [i for i, line in enumerate(output) if line.startswith("ERROR")]
    if not errors:
        last = output[-1] if output else "no output"
        return DvcCommandError(f"dvc {command} exited with {code}: {last}")
    first = errors[0]
    cause = output[first - 1] if first > 0 and not output[first - 1].startswith(">") else ""
    reason = f"{cause} ({output[first]})" if cause else output[first]
    bad_input = failed_on_bad_input(output[first])
    return DvcCommandError(f"dvc {command} {status}: {reason}", bad_input=bad_input)


def _forget_unrestorable_outputs(project: Path) -> None:
    logger = get_run_logger()
    try:
        dropped = forget_unrestorable_outputs(project)
    except Exception as exc:  # `dvc repro --pull` names an unreachable remote itself
        logger.warning("could not ask the remote which locked outputs it holds: %s", exc)
        return
    for stage in dropped:
        logger.info(
            "dvc.lock names outputs of stage %s that no cache or remote holds "
            "(never pushed, or made on another machine): looking it up in the run cache",
            stage,
        )


@task(
    name="dvc repro",
    retries=len(BACKOFF),
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_unless_bad_input,
)
def dvc_repro(project_dir: str, fail_once: bool = False, pull: bool = False) -> dict[str, str]:
    """Run `dvc repro`, streaming its output; return what it says it did to which stage."""
    logger = get_run_logger()
    project = Path(project_dir)
    logger.info("cwd: %s", project)
    if fail_once and task_run.run_count <= 1:
        raise RuntimeError("fail_once: failing the first attempt on purpose to show a retry")
    if pull:
        _forget_unrestorable_outputs(project)
    code, lines = _dvc(project, "repro", *(["--pull"] if pull else []))
    if code != 0:
        # DVC deletes a stage's outputs before running it: put back the last good ones
        # (those dvc.lock records) so a failed run leaves the workspace as it was.
        failure = command_error("repro", code, lines, project)
        checkout_code, checkout_lines = _dvc(project, "checkout", "--force", "dvc.yaml")
        if checkout_code != 0:
            errors = [line for line in checkout_lines if line.startswith("ERROR")] or [
                line for line in checkout_lines if line.strip()
            ][-1:]
            raise DvcCommandError(
                f"{failure}; then restoring the last good outputs failed too (dvc checkout "
                f"exited with {checkout_code}: {errors[0] if errors else 'no output'}): "
                "the workspace may lack outputs until the next successful run",
                bad_input=failure.bad_input,
            ) from failure
        raise failure
    return stage_outcomes(lines)


@task(
    name="dvc push",
    retries=len(BACKOFF),
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_unless_bad_input,
)
def dvc_push(project_dir: str) -> None:
    """Send outputs and the run cache to the remote, so a fresh workspace can skip stages."""
    project = Path(project_dir)
    code, lines = _dvc(project, "push", "--run-cache")
    # DVC logs a failed run-cache upload as ERROR yet exits 0: that is a failed push too
    # (the entry is not in the remote), and another attempt sends what is missing.
    if code != 0 or any(line.startswith("ERROR") for line in lines):
        raise command_error("push", code, lines, project)


@flow(
    name="option-a-dvc-repro",
    description='Option A, "Prefect operates DVC pipeline": `dvc repro` in one task.',
    log_prints=True,
    on_failure=[track_failure],
)
def pipeline_a(
    project_dir: str | None = None,
    params: dict[str, Any] | None = None,
    params_file: str | None = None,
    fail_once: bool = False,
    show_metrics: bool = True,
    pull: bool = False,
    push: bool = False,
    commit: str | None = None,
    publish_results: bool = False,
    results_url: str | None = None,
) -> RunResult:
    """Reproduce the DVC pipeline; return {"stages": {stage: outcome}, "metrics": {...}}.

    `commit`: the commit to run (the deployment's pull steps clone it; empty: the tip of
    main). `publish_results`: push the results commit to refs/heads/runs/<short-sha>.
    `results_url`: where cached task results persist (as for option B; here only the
    confusion-matrix picture), so a new container reuses them.
    """
    with PipelineRun.start(
        "option A, dvc repro", project_dir, params_file, params, show_metrics, commit, results_url
    ) as run:
        reported = dvc_repro(str(run.project), fail_once=fail_once, pull=pull)
        # DVC names the stages it runs; the others it skipped (with --pull, after restoring
        # their outputs, it may just say "Data and pipelines are up to date.").
        outcomes = {name: reported.get(name, SKIPPED) for name in run.pipeline.order()}
        logger = get_run_logger()
        for stage, outcome in outcomes.items():
            logger.info("stage %s: %s", stage, outcome)
        if push:
            dvc_push(str(run.project))
        return run.finish(outcomes, publish_results)
