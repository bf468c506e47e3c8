"""MLflow tracking from both flows, against a local MLflow store (SQLite): what each run
logs, the registry's rule, a tracking outage, a failed run; and no mlflow without it.

The end-to-end suite checks the same against the stack's MLflow server
(tests/e2e/test_mlflow.py); here the rule is exercised run by run, in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)

from flows.option_a import pipeline_a
from flows.option_b import pipeline_b
from mltoy.errors import ParamsError
from tests.support import REPO_ROOT, free_port, make_project

MODEL = "iris-classifier"


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tracking on, to a fresh SQLite store (artifacts beside it)."""
    monkeypatch.chdir(tmp_path)  # the local store puts artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLTOY_MLFLOW_UI_URL", "http://mlflow.example:5000")
    return uri


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def flat_params(project: Path) -> dict[str, str]:
    document = yaml.safe_load((project / "params.yaml").read_text())
    return {f"{group}.{k}": str(v) for group, values in document.items() for k, v in values.items()}


def artifacts_of(flow_run_id) -> dict[str, object]:
    import asyncio

    async def read():
        async with get_client() as prefect:
            return await prefect.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )

    # Oldest first, so a key with several versions maps to its latest.
    found = sorted(asyncio.run(read()), key=lambda artifact: artifact.created)
    return {artifact.key: artifact for artifact in found}


def versions_of(flow_run_id, key: str) -> list[object]:
    """Every version of one of a run's artifacts, oldest first."""
    import asyncio

    async def read():
        async with get_client() as prefect:
            return await prefect.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                    key=ArtifactFilterKey(any_=[key]),
                )
            )

    return sorted(asyncio.run(read()), key=lambda artifact: artifact.created)


@pytest.mark.slow
def test_a_run_logs_params_metrics_model_confusion_image_and_lineage(project, mlflow_store):
    state = pipeline_a(project_dir=str(project), return_state=True)
    result = state.result()
    tracking = result["tracking"]
    assert tracking["status"] == "logged", tracking
    mlflow = client(mlflow_store)
    run = mlflow.get_run(tracking["run_id"])

    assert run.data.params == flat_params(project)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert run.data.metrics == {name: float(value) for name, value in metrics.items()}
    tags = run.data.tags
    flow_run_id = str(state.state_details.flow_run_id)
    assert tags["prefect.flow_run_id"] == flow_run_id
    assert tags["prefect.flow_run_url"].endswith(f"/flow-run/{flow_run_id}")
    assert tags["mltoy.option"] == "option A, dvc repro"
    assert {tags[f"mltoy.stage.{s}"] for s in ("prepare", "train", "evaluate")} == {"ran"}
    assert tags["mltoy.cached"] == "false"
    # DVC's md5s: the raw data as its .dvc file names it, the model as dvc.lock does.
    raw = yaml.safe_load((project / "data/raw/iris.csv.dvc").read_text())["outs"][0]["md5"]
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    model = lock["stages"]["train"]["outs"][0]["md5"]
    assert tags["dvc.md5.data/raw/iris.csv"] == raw
    assert tags["dvc.md5.models/model.joblib"] == model
    assert "mlflow.source.git.commit" not in tags  # no Git here: unknown, not made up
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name == "option-a-dvc-repro"  # outside a deployment: the flow's name

    files = {a.path for a in mlflow.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "promotion.md", "params.yaml", "reports"} <= files
    png = Path(mlflow.download_artifacts(run.info.run_id, "confusion_matrix.png", "."))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    version = mlflow.get_model_version_by_alias(MODEL, "champion")
    assert (str(version.version), version.run_id) == ("1", run.info.run_id)
    assert version.tags["dvc_model_md5"] == model
    assert tags["mltoy.promotion.decision"] == "promoted"

    # The link back from Prefect, and the report.
    artifacts = artifacts_of(state.state_details.flow_run_id)
    link = artifacts["mltoy-model"].data  # "[text](url)"
    url = (
        f"http://mlflow.example:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    )
    assert link.endswith(f"({url})"), link
    assert "promoted" in artifacts["mlflow-tracking"].data


@pytest.mark.slow
def test_registry_one_version_per_model_champion_only_when_better(project, mlflow_store):
    """First run: v1 champion. Same model again: no version. Worse: a version, champion
    stays. Better: a version, and the champion moves. (accuracy, higher is better)"""
    mlflow = client(mlflow_store)

    def run(**params) -> dict:
        tracking = pipeline_b(project_dir=str(project), params=params or None)["tracking"]
        assert tracking["status"] == "logged", tracking
        return tracking

    def champion() -> str:
        return str(mlflow.get_model_version_by_alias(MODEL, "champion").version)

    def versions() -> list[str]:
        return sorted(str(v.version) for v in mlflow.search_model_versions(f"name = '{MODEL}'"))

    first = run()
    assert (first["version"], first["new_version"], champion()) == ("1", True, "1")

    again = run()  # nothing changed: every stage skipped, the same model
    assert (again["version"], again["new_version"]) == ("1", False)
    assert again["decision"]["outcome"] == "already champion"
    tags = mlflow.get_run(again["run_id"]).data.tags
    assert tags["mltoy.cached"] == "true"  # still recorded, tagged as cached
    assert versions() == ["1"]

    worse = run(train={"C": 0.001})
    assert (worse["version"], worse["new_version"], worse["decision"]["outcome"]) == (
        "2",
        True,
        "kept",
    )
    assert worse["decision"]["candidate"] < worse["decision"]["champion"]
    assert champion() == "1"
    # The decision and both values are in the run.
    tags = mlflow.get_run(worse["run_id"]).data.tags
    assert tags["mltoy.promotion.decision"] == "kept"
    assert float(tags["mltoy.promotion.candidate"]) == worse["decision"]["candidate"]
    assert float(tags["mltoy.promotion.champion_before"]) == first["decision"]["candidate"]

    better = run(train={"C": 1.0}, split={"seed": 0})  # a split this model scores higher on
    assert (better["version"], better["decision"]["outcome"]) == ("3", "promoted")
    assert better["decision"]["candidate"] > better["decision"]["champion"]
    assert champion() == "3"

    # The worse model again (same bytes, same md5): no duplicate, and it still loses.
    back = run(train={"C": 0.001}, split={"seed": 42})
    assert (back["version"], back["new_version"], back["decision"]["outcome"]) == (
        "2",
        False,
        "kept",
    )
    assert versions() == ["1", "2", "3"]


@pytest.mark.slow
def test_the_promotion_metric_is_a_setting(project, mlflow_store, monkeypatch):
    """MLTOY_PROMOTION_METRIC=f1_macro: the decision compares f1_macro, not accuracy."""
    monkeypatch.setenv("MLTOY_PROMOTION_METRIC", "f1_macro")
    first = pipeline_b(project_dir=str(project))["tracking"]
    logged = client(mlflow_store).get_run(first["run_id"]).data.metrics
    assert first["decision"]["metric"] == "f1_macro"
    assert first["decision"]["candidate"] == logged["f1_macro"]
    worse = pipeline_b(project_dir=str(project), params={"train": {"C": 0.001}})["tracking"]
    decision = worse["decision"]
    assert (decision["metric"], decision["champion"]) == ("f1_macro", logged["f1_macro"])
    assert decision["candidate"] < decision["champion"] and decision["outcome"] == "kept"


@pytest.mark.slow
def test_a_tie_keeps_the_champion(tmp_path, raw_iris, mlflow_store):
    """Same accuracy (C = 2.0 scores as C = 1.0 on this split), another model: kept."""
    project = make_project(tmp_path / "tie", raw_iris)
    first = pipeline_a(project_dir=str(project))["tracking"]
    tie = pipeline_a(project_dir=str(project), params={"train": {"C": 2.0}})["tracking"]
    assert tie["new_version"] is True
    assert tie["decision"]["candidate"] == first["decision"]["candidate"]
    assert tie["decision"]["outcome"] == "kept"
    assert str(client(mlflow_store).get_model_version_by_alias(MODEL, "champion").version) == "1"


@pytest.mark.slow
def test_the_champion_loads_by_alias_and_scores_the_logged_accuracy(project, mlflow_store):
    import mlflow.pyfunc
    from sklearn.metrics import accuracy_score

    from mltoy.data import FEATURES, TARGET, read_dataset

    tracking = pipeline_a(project_dir=str(project))["tracking"]
    mlflow.set_tracking_uri(mlflow_store)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    test = read_dataset(project / "data/prepared/test.csv")
    accuracy = accuracy_score(test[TARGET], model.predict(test[list(FEATURES)]))
    logged = client(mlflow_store).get_run(tracking["run_id"]).data.metrics["accuracy"]
    assert round(accuracy, 6) == logged


@pytest.mark.slow
def test_mlflow_unreachable_the_run_completes_and_says_tracking_was_skipped(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    state = pipeline_b(project_dir=str(project), return_state=True)
    assert state.is_completed()
    tracking = state.result()["tracking"]
    assert tracking["status"] == "skipped"
    assert "ConnectionError" in tracking["reason"] or "Max retries" in tracking["reason"]
    report = artifacts_of(state.state_details.flow_run_id)["mlflow-tracking"].data
    assert "Tracking skipped" in report
    assert (project / "models/model.joblib").is_file()  # the model is there (and in DVC)


@pytest.mark.slow
def test_a_failed_run_is_logged_as_failed_and_registers_nothing(project, mlflow_store):
    pipeline_a(project_dir=str(project))
    with pytest.raises(ParamsError):
        pipeline_a(project_dir=str(project), params={"split": {"test_size": 1.5}})
    mlflow = client(mlflow_store)
    (experiment,) = [e for e in mlflow.search_experiments() if e.name == "option-a-dvc-repro"]
    runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert [r.info.status for r in runs] == ["FAILED", "FINISHED"]  # newest first
    failed = runs[0]
    assert "split.test_size" in failed.data.tags["mltoy.error"]
    versions = mlflow.search_model_versions(f"name = '{MODEL}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert failed.info.run_id not in {v.run_id for v in versions}


@pytest.mark.parametrize("value", [None, "", "  "])
def test_without_a_tracking_uri_the_flows_never_import_mlflow(tmp_path, value):
    """Unset, or empty as a deployment without MLflow passes it: the flows' modules and the
    hook import no mlflow. (A whole `make run` is checked too: tests/flows/test_make_run.py.)"""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if value is not None:
        env["MLFLOW_TRACKING_URI"] = value
    script = (
        "import sys; import flows.option_a, flows.option_b, flows.cli\n"
        "from flows.tracking_hook import track\n"
        "assert track(None, {}, {}, False) is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'flows.tracking')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
