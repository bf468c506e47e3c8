"""Option B, "Prefect owned stage DAG": one Prefect task per `dvc.yaml` stage.

The graph, deps, params and outs come from `dvc.yaml`; no `dvc repro` runs. Each task's
cache key is made of the content of its deps, its params and its command, and results
persist across runs, so an unchanged stage is skipped as DVC would skip it. A skipped
stage's outputs are restored from DVC's cache (or remote), where each run stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache, partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import task_run

from flows.content_store import ContentStore, MissingObjectError
from flows.dvc_output import RAN, SKIPPED
from flows.dvc_pipeline import Pipeline, Stage
from flows.fingerprint import hash_paths, param_values, stage_key
from flows.pipeline_run import PipelineRun, RunResult
from flows.retry import BACKOFF, retry_unless_bad_input
from flows.stage_exec import StageCommandError, outputs_set_aside, run_command
from flows.tracking_hook import track_failure


@cache
def content_store(project_dir: str, use_remote: bool) -> ContentStore:
    return ContentStore(Path(project_dir), use_remote)


def _merged(upstream_outs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {path: oid for outs in upstream_outs.values() for path, oid in outs.items()}


def stage_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Content of external deps + upstream outputs + tracked params + command.

    The store's identity is part of the key: a result is only reusable where the
    objects it names can be restored from.
    """
    stage: Stage = parameters["stage"]
    if stage.always_changed:
        return None  # no key, no cache: the stage runs every time, as in `dvc repro`
    project = Path(parameters["project_dir"])
    store = content_store(parameters["project_dir"], parameters["use_remote"])
    return stage_key(
        stage,
        external_deps=hash_paths(project, parameters["external_deps"]),
        upstream_outs=_merged(parameters["upstream_outs"]),
        params=param_values(project, stage.params),
        store=store.identity,
    )


@task(
    name="stage",
    task_run_name="{stage.name}",
    cache_key_fn=stage_cache_key,
    persist_result=True,
    retries=len(BACKOFF),
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_unless_bad_input,
)
def run_stage(
    stage: Stage,
    project_dir: str,
    external_deps: tuple[str, ...],
    upstream_outs: dict[str, dict[str, str]],
    use_remote: bool = False,
    fail_once: bool = False,
) -> dict[str, str]:
    """Run one stage on its restored inputs; store and return its outputs {file: md5}."""
    logger = get_run_logger()
    project = Path(project_dir)
    store = content_store(project_dir, use_remote)
    restored = store.restore(_merged(upstream_outs))
    if restored:
        logger.info("restored inputs from the DVC cache: %s", ", ".join(restored))
    if fail_once and task_run.run_count <= 1:
        raise RuntimeError("fail_once: failing the first attempt on purpose to show a retry")
    logger.info("running stage %s: %s", stage.name, stage.cmd)
    # Persisted outputs stay in place for the stage to update, as DVC leaves them.
    with outputs_set_aside(project, tuple(o for o in stage.outs if o not in stage.persist)):
        run_command(stage, project)
        missing = [out for out in stage.outs if not (project / out).exists()]
        if missing:
            raise StageCommandError(f"stage {stage.name} did not write {', '.join(missing)}")
    outs = store.save(stage.outs)
    logger.info("stage %s wrote %s", stage.name, ", ".join(sorted(outs)))
    return outs


@task(
    name="pull tracked data",
    retries=len(BACKOFF),
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_unless_bad_input,
)
def pull_tracked_data(project_dir: str, sources: dict[str, str], use_remote: bool) -> list[str]:
    """Put the DVC-tracked inputs (raw data) in the workspace, as `dvc pull` would."""
    return content_store(project_dir, use_remote).restore(sources, missing_only=True)


@task(name="push tracked data", retries=len(BACKOFF), retry_delay_seconds=BACKOFF)
def push_tracked_data(project_dir: str, sources: dict[str, str], use_remote: bool) -> None:
    """Send the tracked inputs to the remote too, as `dvc push` would."""
    project = Path(project_dir)
    content_store(project_dir, use_remote).save(p for p in sources if (project / p).is_file())


@flow(
    name="option-b-stage-dag",
    description='Option B, "Prefect owned stage DAG": one task per dvc.yaml stage.',
    log_prints=True,
    on_failure=[track_failure],
)
def pipeline_b(
    project_dir: str | None = None,
    params: dict[str, Any] | None = None,
    params_file: str | None = None,
    fail_once: bool = False,
    show_metrics: bool = True,
    use_remote: bool = False,
    refresh: bool = False,
    results_url: str | None = None,
    commit: str | None = None,
    publish_results: bool = False,
) -> RunResult:
    """Run the dvc.yaml stages as Prefect tasks; same return shape as option A.

    `use_remote`: stage outputs also go to (and come from) the DVC remote.
    `results_url`: where task results, hence the stage cache, persist (an fsspec URL such
    as s3://bucket/prefect-results); default: Prefect's local storage. Containers that
    share no disk share the cache through these two.
    `commit`, `publish_results`: as for option A (dvc.lock is written with `dvc commit`).
    """
    logger = get_run_logger()
    with PipelineRun.start(
        "option B, Prefect stage DAG",
        project_dir,
        params_file,
        params,
        show_metrics,
        commit,
        results_url,
    ) as run:
        project, pipeline = run.project, run.pipeline
        stage_task = run_stage.with_options(**run.task_options)
        sources = dict(pipeline.tracked_sources)
        pulled = pull_tracked_data(str(project), sources, use_remote)
        if pulled:
            logger.info("pulled DVC-tracked data: %s", ", ".join(pulled))
        run_graph = partial(
            _run_graph, stage_task, pipeline, project, use_remote, fail_once, refresh
        )
        outcomes = _run_stages(run_graph, pipeline)
        if use_remote:
            push_tracked_data(str(project), sources, use_remote)
        return run.finish(outcomes, publish_results, lock_written=False)


def _run_stages(
    run_graph: Callable[[set[str]], dict[str, str]], pipeline: Pipeline
) -> dict[str, str]:
    """Run the graph; a cached result whose objects are gone is a cache miss.

    `dvc gc` (or a lost cache) can remove the objects a cached stage result names. The
    stage that needs them then fails with MissingObjectError naming the file; its
    producer is run again with its cache refreshed (so it stores the objects again), and
    the graph is run again: at most once per stage. A missing file that no stage
    produces (raw data) stays the run's failure.
    """
    logger = get_run_logger()
    rebuild: set[str] = set()
    while True:
        try:
            return run_graph(rebuild)
        except MissingObjectError as missing:
            producer = pipeline.producer(missing.relpath)
            if producer is None or producer in rebuild:
                raise
            logger.warning(
                "%s: stage %s's cached result names it, but %s; running %s again",
                missing.relpath,
                producer,
                str(missing).split(": ", 1)[-1],
                producer,
            )
            rebuild.add(producer)


def _run_graph(
    stage_task: Any,
    pipeline: Pipeline,
    project: Path,
    use_remote: bool,
    fail_once: bool,
    refresh: bool,
    rebuild: set[str],
) -> dict[str, str]:
    """Submit every stage (in `rebuild` or all with `refresh`: ignoring the cache), wait,
    and put every output in the workspace; return {stage: ran | skipped}."""
    logger = get_run_logger()
    futures: dict[str, PrefectFuture[dict[str, str]]] = {}
    order = pipeline.order()
    for name in order:
        futures[name] = stage_task.with_options(
            refresh_cache=(refresh or name in rebuild) or None
        ).submit(
            stage=pipeline.stages[name],
            project_dir=str(project),
            external_deps=pipeline.external_deps(name),
            upstream_outs={up: futures[up] for up in sorted(pipeline.upstream[name])},
            use_remote=use_remote,
            fail_once=fail_once and name == order[0],
        )
    outcomes: dict[str, str] = {}
    all_outs: dict[str, str] = {}
    for name, future in futures.items():
        all_outs.update(future.result())
        outcomes[name] = SKIPPED if future.state.name == "Cached" else RAN
    restored = content_store(str(project), use_remote).restore(all_outs)
    for name, outcome in outcomes.items():
        logger.info("stage %s: %s", name, outcome)
    if restored:
        logger.info("checked out cached outputs: %s", ", ".join(restored))
    return outcomes
