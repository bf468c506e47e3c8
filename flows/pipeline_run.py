"""What every flow run does before and after its stages, whichever option runs them.

`PipelineRun.start` finds the project and holds it for the run (one run per project
directory), names the run after the commit it runs, makes the run's params the
workspace's and reads the pipeline through DVC (a bad definition fails here, before any
stage runs); `finish` reads the metrics the pipeline declares, logs them when asked,
publishes them (with their change against the previous run) and the confusion matrix as
the run's artifacts, reports the commit (and pushes its results commit when asked),
records the run in MLflow when tracking is on, links the model (flows/reporting.py), and
returns the flows' common result. Per-run concerns that are not a way of running stages
belong here, as a step of `start` or `finish`, so that both options get them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from flows import gitops, workspace
from flows.dvc_pipeline import Pipeline, load_pipeline
from flows.git_workspace import Commit
from flows.reporting import (
    metrics_summary,
    publish_confusion_matrix,
    publish_metrics,
    publish_model_link,
    publish_stages,
    read_metrics,
)
from flows.results import result_storage
from flows.tracking_hook import track


class RunResult(TypedDict):
    stages: dict[str, str]  # stage name -> ran | skipped | restored
    metrics: dict[str, Any]
    tracking: NotRequired[dict[str, Any]]  # the MLflow run and model, when tracking is on


@dataclass
class PipelineRun:
    option: str  # how the artifact names the flow: "option A, dvc repro"
    project: Path
    pipeline: Pipeline  # read after the params are applied: `foreach`, `${...}` read them
    source: Commit | None = None  # what the run runs (None outside a Git work tree)
    show_metrics: bool = True
    # Options of the run's cached tasks: where their results persist (`results_url`).
    task_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def start(
        cls,
        option: str,
        project_dir: str | None,
        params_file: str | None = None,
        params: Mapping[str, Any] | None = None,
        show_metrics: bool = True,
        commit: str | None = None,
        results_url: str | None = None,
    ) -> Iterator[PipelineRun]:
        """Hold the project for the run; check it is at `commit` (when given) and name the
        run after it; validate and apply the run's params; read the pipeline. Cached tasks
        keep their results at `results_url` (default: Prefect's local storage)."""
        project = workspace.resolve_project(project_dir)
        # The whole run holds the project directory: its params, outputs, metrics and
        # results commit belong together.
        with workspace.exclusive(project):
            source = gitops.start(project, commit)
            workspace.apply_params(project, params_file=params_file, overrides=params)
            task_options = {"result_storage": result_storage(results_url)} if results_url else {}
            yield cls(
                option,
                project,
                load_pipeline(project),
                source=source,
                show_metrics=show_metrics,
                task_options=task_options,
            )

    def finish(
        self,
        stages: Mapping[str, str],
        publish_results: bool = False,
        lock_written: bool = True,
    ) -> RunResult:
        """Report the run's metrics and commit, push its results commit when asked
        (`lock_written`: the stages updated dvc.lock, as `dvc repro` does), track it;
        return {"stages": ..., "metrics": ...[, "tracking": ...]}."""
        metrics = read_metrics(self.project, self.pipeline.metrics_files)
        if self.show_metrics:
            metrics_summary(metrics)
        publish_metrics(metrics, option=self.option)
        publish_stages(stages, option=self.option)
        publish_confusion_matrix(self.project, self.option, self.task_options)
        gitops.finish(
            self.project, self.source, self.option, stages, metrics, publish_results, lock_written
        )
        result: RunResult = {"stages": dict(stages), "metrics": metrics}
        tracking = track(self, stages, metrics, publish_results)
        if tracking is not None:
            result["tracking"] = tracking
        published = self.source is not None and publish_results
        results_branch = self.source.results_ref.removeprefix("refs/heads/") if published else None
        publish_model_link(self.project, tracking, results_branch)
        return result
