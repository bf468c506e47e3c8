"""A flow run, recorded in MLflow: its run, its model in the registry, the champion.

Imported only when MLFLOW_TRACKING_URI is set (the hook in flows/pipeline_run.py): without
it nothing here, and nothing of mlflow, is imported. After the pipeline (stages ran or
skipped alike) one MLflow run is logged in the experiment named after the deployment
(`<flow>/<deployment>`; `<flow>` outside a deployment), with

- params: params.yaml flattened (`split.seed`, `train.C`, ...); metrics: metrics.json;
- artifacts: the confusion matrix as an image (and its CSV), params.yaml, metrics.json, the
  promotion report; the model in MLflow's sklearn format (skops) with signature and input
  example, loadable as `models:/iris-classifier@champion`;
- tags: the Prefect flow run (id, name, UI URL), deployment, option, what each stage did
  (`mltoy.cached` when none ran), the DVC md5 of the tracked data and of every output, the
  Git commit when known, and the registry's decision (flows/registry.py).

The Prefect run gets a markdown report of the decision (and, from flows/reporting.py, its
model link artifact points at the MLflow run). Tracking never fails the flow: when MLflow
cannot be reached or refuses, the run completes with "MLflow tracking skipped: <reason>"
in its log and report (the model is in DVC already). A failed flow run is logged as a
FAILED MLflow run, and never registers. A sweep (flows/sweep.py) is one MLflow run
with a nested run per trial (`track_sweep_runs`), in the experiment named after the
sweep's deployment.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# A tracking outage must cost the pipeline seconds, not MLflow's default of 7 retries with
# exponential back-off (minutes). Set before mlflow is imported; the environment wins.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Artifacts go through the server's proxy, both ways. MLflow >= 3.x clients otherwise ask
# the server (/server-info) and, for an S3 destination, move bytes straight to and from the
# bucket with presigned URLs: the store is not something clients reach (docs/mlflow.md).
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
# No git in the image: MLflow's own Git tags would log a warning per run (the commit tag is
# filled by source_commit below).
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def _link_login(settings_login: Path = Path("/run/mltoy/mlflow/credentials")) -> None:
    """The flows' MLflow login is in the read-only settings volume (deploy/mlflow_users.py);
    MLflow reads ~/.mlflow/credentials. The image links one to the other, but a flow
    container's home is a tmpfs (deploy/work_pool.py) that hides the link: make it again."""
    home_login = Path.home() / ".mlflow/credentials"
    if settings_login.is_file() and not home_login.exists():
        home_login.parent.mkdir(parents=True, exist_ok=True)
        home_login.unlink(missing_ok=True)  # a dangling link
        home_login.symlink_to(settings_login)


_link_login()

import mlflow  # noqa: E402
import mlflow.sklearn  # noqa: E402
import yaml  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import RunStatus  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from prefect import get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.runtime import deployment, flow_run  # noqa: E402

from flows import registry  # noqa: E402
from flows.dvc_output import RAN  # noqa: E402
from flows.dvc_pipeline import Pipeline  # noqa: E402
from flows.fingerprint import md5_file  # noqa: E402
from flows.git_workspace import Commit, head  # noqa: E402
from flows.reporting import CONFUSION, MODEL, confusion_figure  # noqa: E402
from flows.workspace import flatten  # noqa: E402
from mltoy.data import FEATURES, read_dataset  # noqa: E402

if TYPE_CHECKING:
    from flows.pipeline_run import PipelineRun

# The pipeline's files that tracking reads (dvc.yaml's outputs; the model and the
# confusion rows as the Prefect artifacts name them).
TEST_SPLIT = "data/prepared/test.csv"
PARAMS = "params.yaml"

REPORT_KEY = "mlflow-tracking"


@dataclass(frozen=True)
class TrackingSettings:
    """From the environment (compose.mlflow.yaml sets them for flow containers)."""

    tracking_uri: str
    ui_url: str  # where a browser opens the MLflow UI (default: the tracking URI)
    metric: str = "accuracy"  # MLTOY_PROMOTION_METRIC: higher is better
    model_name: str = "iris-classifier"

    @classmethod
    def from_env(cls) -> TrackingSettings:
        uri = os.environ["MLFLOW_TRACKING_URI"]
        return cls(
            tracking_uri=uri,
            ui_url=(os.environ.get("MLTOY_MLFLOW_UI_URL") or uri).rstrip("/"),
            metric=os.environ.get("MLTOY_PROMOTION_METRIC") or cls.metric,
        )


def git_tags(project: Path, commit: Commit | None, published: bool) -> dict[str, str]:
    """The one place the run's Git tags are filled: the commit the run ran (flows.gitops
    gives it; else the project's HEAD when it is a Git work tree), whether the work tree
    had uncommitted changes, and the ref its results commit was pushed to. Outside Git:
    no tag (unknown, never guessed)."""
    commit = commit or head(project)
    if commit is None:
        return {}
    tags = {"mlflow.source.git.commit": commit.sha, "mltoy.git.dirty": str(commit.dirty).lower()}
    if published:
        tags["mltoy.git.results_ref"] = commit.results_ref
    return tags


def lineage_tags(
    project: Path,
    pipeline: Pipeline,
    stages: Mapping[str, str],
    commit: Commit | None,
    published: bool,
) -> dict[str, str]:
    """Where the run came from: Prefect, the stages, DVC's md5s, Git."""
    tags = {
        "prefect.flow_run_id": str(flow_run.id),
        "prefect.flow_run_name": str(flow_run.name),
        "prefect.flow_run_url": str(flow_run.ui_url or ""),
        "prefect.flow": str(flow_run.flow_name),
        "prefect.deployment": str(deployment.name or "none (local run)"),
        "mltoy.cached": str(not any(outcome == RAN for outcome in stages.values())).lower(),
    }
    tags.update({f"mltoy.stage.{name}": outcome for name, outcome in stages.items()})
    md5s = dict(pipeline.tracked_sources)
    for name in pipeline.order():
        for out in pipeline.stages[name].outs:
            if (project / out).is_file():
                md5s[out] = md5_file(project / out)
    tags.update({f"dvc.md5.{path}": md5 for path, md5 in md5s.items()})
    tags.update(git_tags(project, commit, published))
    return tags


def experiment_name() -> str:
    flow = str(flow_run.flow_name)
    return f"{flow}/{deployment.name}" if deployment.name else flow


def run_url(settings: TrackingSettings, run: Any) -> str:
    return f"{settings.ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"


def log_model(project: Path) -> Any:
    """The DVC-tracked model, in MLflow's sklearn format with signature and input example."""
    import joblib

    model = joblib.load(project / MODEL)
    features = read_dataset(project / TEST_SPLIT)[list(FEATURES)]
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(features, model.predict(features)),
        input_example=features.head(5),
        # What the model needs, named here: no inference subprocess per run.
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
    )


def report(option: str, run_link: str, outcome: dict[str, Any]) -> str:
    """The markdown report of the run's tracking and registry decision."""
    lines = [f"# MLflow tracking ({option})", ""]
    if outcome["status"] != "logged":
        return "\n".join([*lines, f"**Tracking skipped**: {outcome['reason']}", ""])
    lines += [f"MLflow run: [{outcome['run_id']}]({run_link})", ""]
    decision = outcome["decision"]
    lines += [
        "| registry | |",
        "| --- | --- |",
        f"| model | `{outcome['model_name']}` version {outcome['version']}"
        f" ({'new' if outcome['new_version'] else 'already registered: same DVC md5'}) |",
        f"| decision | **{decision['outcome']}**: {decision['reason']} |",
        f"| {decision['metric']} of this model | {decision['candidate']} |",
        f"| {decision['metric']} of the champion before | {decision['champion']} |",
        f"| champion before | {decision['champion_version']} |",
        "",
    ]
    return "\n".join(lines)


def _log(
    settings: TrackingSettings,
    project: Path,
    pipeline: Pipeline,
    option: str,
    stages: Mapping[str, str],
    metrics: Mapping[str, Any],
    commit: Commit | None,
    published: bool,
) -> dict[str, Any]:
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    if settings.metric not in metrics:
        raise ValueError(
            f"promotion metric {settings.metric!r} is not in metrics.json ({', '.join(metrics)})"
        )
    params = yaml.safe_load((project / PARAMS).read_text())
    mlflow.set_experiment(experiment_name())
    with mlflow.start_run(run_name=str(flow_run.name)) as run:
        tags = lineage_tags(project, pipeline, stages, commit, published)
        mlflow.set_tags({**tags, "mltoy.option": option})
        mlflow.log_params(flatten(params))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for relpath in (PARAMS, CONFUSION, *pipeline.metrics_files):
            folder = Path(relpath).parent.as_posix()
            mlflow.log_artifact(str(project / relpath), None if folder == "." else folder)
        mlflow.log_figure(confusion_figure(project / CONFUSION), "confusion_matrix.png")
        logged = log_model(project)
        version, new = registry.register(
            client,
            settings.model_name,
            logged,
            md5_file(project / MODEL),
            run.info.run_id,
            tags={"prefect.flow_run_id": str(flow_run.id)},
        )
        decision = registry.promote(
            client, settings.model_name, version, settings.metric, float(metrics[settings.metric])
        )
        outcome = {
            "status": "logged",
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "model_name": settings.model_name,
            "version": str(version.version),  # an int or a str, depending on the store
            "new_version": new,
            "decision": decision.__dict__,
        }
        mlflow.set_tags(
            {
                "mltoy.registry.model": settings.model_name,
                "mltoy.registry.version": str(version.version),
                "mltoy.registry.new_version": str(new).lower(),
                "mltoy.promotion.metric": decision.metric,
                "mltoy.promotion.decision": decision.outcome,
                "mltoy.promotion.reason": decision.reason,
                "mltoy.promotion.candidate": str(decision.candidate),
                "mltoy.promotion.champion_before": str(decision.champion),
                "mltoy.promotion.champion_version_before": str(decision.champion_version),
            }
        )
        link = run_url(settings, run)
        mlflow.log_text(report(option, link, outcome), "promotion.md")
    outcome["url"] = link
    return outcome


# Never cached: each call registers a model and moves an alias (and a PipelineRun is no
# cache key).
@task(name="mlflow tracking", cache_policy=NO_CACHE)
def track_run(
    run: PipelineRun,
    stages: Mapping[str, str],
    metrics: Mapping[str, Any],
    published: bool = False,
) -> dict[str, Any]:
    """Log the run, register its model, apply the promotion rule; never fail the flow.

    Returns {"status": "logged", "run_id", "version", "decision", ...} or
    {"status": "skipped", "reason": ...}.
    """
    logger = get_run_logger()
    settings = TrackingSettings.from_env()
    try:
        outcome = _log(
            settings, run.project, run.pipeline, run.option, stages, metrics, run.source, published
        )
    except Exception as exc:  # an outage or a refusal: the pipeline's result stands
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        logger.warning(
            "MLflow tracking skipped: %s (MLflow at %s; the model is in DVC)",
            reason,
            settings.tracking_uri,
        )
        outcome = {"status": "skipped", "reason": reason}
        create_markdown_artifact(key=REPORT_KEY, markdown=report(run.option, "", outcome))
        return outcome
    decision = outcome["decision"]
    logger.info(
        "MLflow run %s: %s version %s (%s); %s: %s",
        outcome["run_id"],
        settings.model_name,
        outcome["version"],
        "new" if outcome["new_version"] else "already registered",
        decision["outcome"],
        decision["reason"],
    )
    create_markdown_artifact(
        key=REPORT_KEY,
        markdown=report(run.option, outcome["url"], outcome),
        description="MLflow tracking and the model registry's decision.",
    )
    return outcome


def log_failed_run(flow_name: str, error: str, logger: Any) -> str | None:
    """A FAILED MLflow run for a flow run that failed: tags and the error, no model.

    Returns its run id, or None when MLflow could not be reached (said in the log)."""
    settings = TrackingSettings.from_env()
    try:
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_experiment(experiment_name())
        run = mlflow.start_run(run_name=str(flow_run.name))
        try:
            mlflow.set_tags(
                {
                    "prefect.flow_run_id": str(flow_run.id),
                    "prefect.flow_run_url": str(flow_run.ui_url or ""),
                    "prefect.flow": flow_name,
                    "prefect.deployment": str(deployment.name or "none (local run)"),
                    "mltoy.error": error[:5000],
                }
            )
            with tempfile.TemporaryDirectory() as tmp:
                parameters = Path(tmp) / "prefect_parameters.json"
                parameters.write_text(json.dumps(flow_run.parameters, indent=2, default=str))
                mlflow.log_artifact(str(parameters))
        finally:
            mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
    except Exception as exc:
        logger.warning(
            "MLflow tracking skipped for this failed run: %s: %s", type(exc).__name__, exc
        )
        return None
    logger.info("MLflow run %s records this failed run (no model registered)", run.info.run_id)
    return run.info.run_id


def _log_sweep(
    settings: TrackingSettings,
    option: str,
    metric: str,
    mode: str,
    rows: list[Mapping[str, Any]],
) -> dict[str, Any]:
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(experiment_name())
    with mlflow.start_run(run_name=str(flow_run.name)) as parent:
        mlflow.set_tags(
            {
                "prefect.flow_run_id": str(flow_run.id),
                "prefect.flow_run_url": str(flow_run.ui_url or ""),
                "prefect.deployment": str(deployment.name or "none (local run)"),
                "mltoy.option": option,
                "mltoy.sweep.metric": metric,
                "mltoy.sweep.mode": mode,
            }
        )
        children = {}
        for row in rows:
            completed = row["state"] == "Completed"
            with mlflow.start_run(run_name=f"trial {row['trial']}", nested=True) as child:
                mlflow.log_params({k: str(v) for k, v in row["swept"].items()})
                numbers = {
                    k: float(v)
                    for k, v in row["metrics"].items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                }
                if numbers:
                    mlflow.log_metrics(numbers)
                mlflow.set_tags(
                    {
                        "prefect.flow_run_url": str(row["run"]),
                        "mltoy.trial.overrides": str(row["overrides"]),
                        "mltoy.trial.state": str(row["state"]),
                        "mltoy.trial.reason": str(row["reason"])[:5000],
                        **{f"mltoy.stage.{k}": str(v) for k, v in row["stages"].items()},
                    }
                )
                if not completed:
                    mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            children[row["trial"]] = child.info.run_id
        best = next((r for r in rows if r["state"] == "Completed" and metric in r["metrics"]), None)
        if best is not None:
            mlflow.log_metric(f"best_{metric}", float(best["metrics"][metric]))
            mlflow.set_tag("mltoy.sweep.best_trial", str(best["trial"]))
    return {
        "status": "logged",
        "run_id": parent.info.run_id,
        "url": run_url(settings, parent),
        "trials": children,
    }


@task(name="mlflow sweep tracking", cache_policy=NO_CACHE)
def track_sweep_runs(
    option: str, metric: str, mode: str, rows: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """The sweep as one MLflow run with a nested run per trial (params, metrics, state,
    stages, the trial's Prefect run); `rows` best first. Logged by the sweep, once its
    trials are over: trials themselves are not tracked (concurrent trials would race on
    the registry's champion). Never fails the sweep."""
    logger = get_run_logger()
    settings = TrackingSettings.from_env()
    try:
        outcome = _log_sweep(settings, option, metric, mode, rows)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        logger.warning("MLflow tracking skipped: %s (MLflow at %s)", reason, settings.tracking_uri)
        return {"status": "skipped", "reason": reason}
    logger.info(
        "MLflow run %s holds the sweep, %d nested trial runs: %s",
        outcome["run_id"],
        len(outcome["trials"]),
        outcome["url"],
    )
    return outcome
