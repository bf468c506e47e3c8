"""What every flow run does before and after its stages, whichever option runs them.

`PipelineRun.start` finds the project and makes the run's params the workspace's;
`finish` reads the metrics the pipeline declares, logs them when asked, publishes them
as the run's artifact and returns the flows' common result. Per-run concerns that are
not a way of running stages (a commit report, pushing results, experiment tracking)
belong here, as a step of `start` or `finish`, so that both options get them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
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
        """Resolve the project, then validate and apply the run's params (or fail here)."""
        project = workspace.resolve_project(project_dir)
        workspace.apply_params(project, params_file=params_file, overrides=params)
        return cls(option=option, project=project, show_metrics=show_metrics)

    @cached_property
    def pipeline(self) -> Pipeline:
        """The stages `dvc repro` would run, read through DVC once per run (after the
        params are applied: `foreach` and `${...}` may read them)."""
        return load_pipeline(self.project)

    def finish(self, stages: Mapping[str, str]) -> RunResult:
        """Report the run's metrics; return {"stages": ..., "metrics": ...}."""
        metrics = read_metrics(self.project, self.pipeline.metrics_files)
        if self.show_metrics:
            metrics_summary(metrics)
        publish_metrics(metrics, option=self.option)
        return {"stages": dict(stages), "metrics": metrics}
