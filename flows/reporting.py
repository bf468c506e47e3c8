"""What a reviewer sees of a run in Prefect, for both options: its artifacts and logs.

- `mltoy-metrics` (table): each metric, its value in the previous run of the same
  deployment and the change; read back from that run's own `mltoy-metrics` artifact, so
  Prefect's history is the one record (a run outside a deployment compares with none).
- `mltoy-confusion-matrix` (table: actual class by predicted class) and
  `mltoy-confusion-matrix-plot` (markdown with the matplotlib picture embedded as a
  data URL, which Prefect's UI renders: nothing to host). The picture is drawn by a
  cached task (`confusion matrix plot`): a run whose rows did not change reuses the
  last picture instead of importing matplotlib (half a second) to draw it again; with
  the run's `results_url` (the deployments'), also in a new container.
- `mltoy-stages` (table): each stage and what the run did to it (ran or skipped).
- `mltoy-model` (link): the model in MLflow (its run) when tracking logged it, else the
  DVC object that holds it; the description says how to `dvc pull` it.

The commit's report (flows/run_report.py: stages and DVC's diffs against the previous
results commit) and MLflow's own report (flows/tracking.py) are published elsewhere.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import inspect
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.context import TaskRunContext

ARTIFACT_KEY = "mltoy-metrics"
CONFUSION_KEY = "mltoy-confusion-matrix"
CONFUSION_PLOT_KEY = "mltoy-confusion-matrix-plot"
MODEL_KEY = "mltoy-model"
STAGES_KEY = "mltoy-stages"
# The pipeline's files a reviewer looks at (dvc.yaml's outputs).
MODEL = "models/model.joblib"
CONFUSION = "reports/plots/confusion.csv"  # rows of (actual, predicted), one per test sample


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


def change(value: Any, previous: Any) -> str:
    """'+0.0222', '-1', '0' for numbers; '' when either side is missing or not a number."""
    numbers = (int, float)
    if not isinstance(value, numbers) or not isinstance(previous, numbers):
        return ""
    if isinstance(value, bool) or isinstance(previous, bool):
        return ""
    delta = round(value - previous, 6)
    return "0" if delta == 0 else f"{delta:+g}"


def metrics_rows(
    metrics: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    previous = previous or {}
    return [
        {
            "metric": name,
            "value": value,
            "previous": previous.get(name),
            "change": change(value, previous.get(name)),
        }
        for name, value in metrics.items()
    ]


def previous_metrics() -> tuple[str, dict[str, Any]] | None:
    """(run name, metrics) of the latest earlier run of this run's deployment that
    published `mltoy-metrics`; None without one, or outside a deployment."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterId,
    )
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None or run.deployment_id is None:
        return None
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY])),
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(not_any_=[run.id]),
                deployment_id=FlowRunFilterDeploymentId(any_=[run.deployment_id]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
        if not found or found[0].flow_run_id is None:
            return None
        name = client.read_flow_run(found[0].flow_run_id).name
    data = found[0].data
    rows = json.loads(data) if isinstance(data, str) else data
    return name, {row["metric"]: row["value"] for row in rows}


def publish_metrics(metrics: Mapping[str, Any], option: str) -> None:
    """One table artifact per flow run, under a stable key so the UI shows its history,
    with each metric's change against the previous run."""
    previous = previous_metrics()
    against = f"the previous run, {previous[0]}" if previous else "no previous run"
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=metrics_rows(metrics, previous[1] if previous else None),
        description=f"Evaluation metrics of the mltoy pipeline ({option}); change against "
        f"{against}.",
    )


def publish_stages(stages: Mapping[str, str], option: str) -> None:
    """What the run did to each stage (ran, skipped), readable by another run: a sweep's
    leaderboard reads its trials' (flows/sweep.py)."""
    create_table_artifact(
        key=STAGES_KEY,
        table=[{"stage": name, "outcome": outcome} for name, outcome in stages.items()],
        description=f"What the run did to each stage of the pipeline ({option}).",
    )


def confusion_matrix(path: Path) -> tuple[list[str], list[list[int]]]:
    """(labels, counts[actual][predicted]) from the evaluate stage's rows.

    Counted with the standard library: every run publishes it, and most runs train
    nothing, so they need not import pandas and scikit-learn (seconds) for a few lines."""
    with path.open(newline="") as handle:
        pairs = [(row["actual"], row["predicted"]) for row in csv.DictReader(handle)]
    labels = sorted({actual for actual, _ in pairs} | {predicted for _, predicted in pairs})
    counted = Counter(pairs)
    return labels, [[counted[(actual, predicted)] for predicted in labels] for actual in labels]


def confusion_figure(path: Path) -> Any:
    """The confusion matrix as a picture, drawn as scikit-learn's display draws it (rows:
    true label, columns: predicted), with matplotlib's object API (no pyplot state)."""
    from matplotlib.figure import Figure

    labels, counts = confusion_matrix(path)
    figure = Figure(figsize=(4.8, 4.2))
    axes = figure.subplots()
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels=labels)
    axes.set_yticks(range(len(labels)), labels=labels)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    top = max((n for row in counts for n in row), default=0)
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            colour = "white" if n > top / 2 else "black"
            axes.text(j, i, str(n), ha="center", va="center", color=colour)
    axes.set_title("Confusion matrix (test split)")
    figure.tight_layout()
    return figure


def png_data_url(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """The same rows drawn by the same code with the same matplotlib: the same picture."""
    digest = hashlib.sha256(Path(parameters["path"]).read_bytes())
    for part in (
        metadata.version("matplotlib"),
        inspect.getsource(confusion_figure),
        inspect.getsource(png_data_url),
    ):
        digest.update(part.encode())
    return f"mltoy-confusion-plot-{digest.hexdigest()}"


@task(name="confusion matrix plot", cache_key_fn=plot_cache_key, persist_result=True)
def confusion_plot(path: str) -> str:
    """The picture as a PNG data URL; cached, so most runs never import matplotlib."""
    return png_data_url(confusion_figure(Path(path)))


def publish_confusion_matrix(
    project: Path, option: str, task_options: dict[str, Any] | None = None
) -> None:
    """`task_options`: for the cached picture, e.g. the run's shared `result_storage`."""
    path = project / CONFUSION
    labels, counts = confusion_matrix(path)
    create_table_artifact(
        key=CONFUSION_KEY,
        table=[
            {"actual \\ predicted": label, **dict(zip(labels, row, strict=True))}
            for label, row in zip(labels, counts, strict=True)
        ],
        description=f"Confusion matrix of the test split ({option}): rows are the actual "
        "class, columns the predicted one.",
    )
    picture = confusion_plot.with_options(**(task_options or {}))(str(path))
    create_markdown_artifact(
        key=CONFUSION_PLOT_KEY,
        markdown=f"### Confusion matrix (test split)\n\n![Confusion matrix]({picture})\n",
        description=f"Confusion matrix of the test split ({option}), from {CONFUSION}.",
    )


def dvc_object_url(project: Path, md5: str) -> str | None:
    """Where the default DVC remote keeps the object `md5` (s3://..., gs://..., a path);
    None without a remote."""
    from dvc.repo import Repo

    try:
        with Repo(str(project)) as repo:
            odb = repo.cloud.get_remote_odb()
            return odb.fs.unstrip_protocol(odb.oid_to_path(md5))
    except Exception:  # no default remote, or one DVC cannot name: no link, said so
        return None


def pull_command(results_branch: str | None) -> str:
    """How a developer gets the model into a checkout of the project."""
    pull = f"dvc pull {MODEL}"
    if results_branch is None:
        return pull
    return f"git fetch stack && git checkout {results_branch} && {pull}"


def publish_model_link(
    project: Path,
    tracking: Mapping[str, Any] | None,
    results_branch: str | None,
) -> None:
    """The `mltoy-model` link: MLflow's run when tracking logged the model, else the DVC
    object; both say how to `dvc pull` it (`results_branch`: the run's results commit)."""
    from flows.fingerprint import md5_file

    md5 = md5_file(project / MODEL)
    object_url = dvc_object_url(project, md5) or "no DVC remote configured"
    dvc = (
        f"DVC: `{MODEL}` md5 `{md5}`, object `{object_url}`; get it with "
        f"`{pull_command(results_branch)}`"
    )
    if tracking and tracking.get("status") == "logged":
        create_link_artifact(
            key=MODEL_KEY,
            link=tracking["url"],
            link_text=f"{tracking['model_name']} version {tracking['version']}: "
            f"MLflow run {tracking['run_id']}",
            description=f"The model in MLflow. {dvc}",
        )
        return
    create_link_artifact(
        key=MODEL_KEY,
        link=object_url,
        link_text=object_url,
        description=f"The model in the DVC remote. {dvc}",
    )
