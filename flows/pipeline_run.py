"""What every flow run does before and after its stages, whichever option runs them.

`PipelineRun.start` finds the project, makes the run's params the workspace's and reads
the pipeline through DVC (a bad definition fails here, before any stage runs); `finish`
reads the metrics the pipeline declares, logs them when asked, publishes them
as the run's artifact and returns the flows' common result. Per-run concerns that are
not a way of running stages (a commit report, pushing results, experiment tracking)
belong here, as a step of `start` or `finish`, so that both options get them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from flows import workspace
from flows.dvc_pipeline import Pipeline, load_pipeline
from flows.reporting import metrics_summary, publish_metrics, read_metrics


class RunResult(TypedDict):
    stages: dict[str, str]  # stage name -> ran | skipped | restored
    metrics: dict[str, Any]


@dataclass
class PipelineRun:
    option: str  # how the artifact names the flow: "option A, dvc repro"
    project: Path
    pipeline: Pipeline  # read after the params are applied: `foreach`, `${...}` read them
    show_metrics: bool = True

    @classmethod
    def start(
        cls,
        option: str,
        project_dir: str | None,
        params_file: str | None = None,
        params: Mapping[str, Any] | None = None,
        show_metrics: bool = True,
    ) -> PipelineRun:
        """Resolve the project, validate and apply the run's params, read the pipeline."""
        project = workspace.resolve_project(project_dir)
        workspace.apply_params(project, params_file=params_file, overrides=params)
        return cls(option, project, load_pipeline(project), show_metrics)

    def finish(self, stages: Mapping[str, str]) -> RunResult:
        """Report the run's metrics; return {"stages": ..., "metrics": ...}."""
        metrics = read_metrics(self.project, self.pipeline.metrics_files)
        if self.show_metrics:
            metrics_summary(metrics)
        publish_metrics(metrics, option=self.option)
        return {"stages": dict(stages), "metrics": metrics}
