"""MLflow in the stack (compose.mlflow.yaml): every flow run logged, the registry's rule,
the champion servable by alias, a tracking outage, and MLflow's security.

Runs after test_stack (see conftest's ORDER), in file order, on the suite's one stack: the
registry's history builds up run by run. test_stack's runs all use the default params, so
when this module starts the registry holds exactly one version, made by the suite's first
tracked run; run alone, the first test makes that run itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from tests.e2e.stack import Stack, poll
from tests.support import REPO_ROOT

MODEL = "iris-classifier"
FLOWS = {"a": "option-a-dvc-repro", "b": "option-b-stage-dag"}
WORSE = {"train": {"C": 0.001}}  # accuracy 0.756 on the default split (0.911 with C = 1)
BETTER = {"split": {"seed": 0}}  # 0.978: a split this model scores higher on


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@pytest.fixture(scope="module")
def mlflow_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['MLFLOW_PORT']}"


@pytest.fixture(scope="module")
def admin(stack: Stack, mlflow_url: str) -> Iterator[Any]:
    """MLflow's client as the admin, from this (host) process: no S3 key anywhere in it."""
    from mlflow import MlflowClient

    login = {
        "MLFLOW_TRACKING_URI": mlflow_url,  # also the registry's (models:/ URIs)
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": stack.env["MLFLOW_ADMIN_PASSWORD"],
        # What docs/mlflow.md tells a client outside the stack: artifacts through the
        # proxy (the object store is not published; presigned URLs name it).
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
    }
    saved = {k: os.environ.get(k) for k in login}
    aws = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    os.environ.update(login)
    try:
        yield MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.update(aws)


def mlflow_run(admin: Any, flow_run_id: UUID) -> Any:
    """The MLflow run that records this Prefect flow run, once it has ended (polled: it is
    logged as the flow run ends, and a failed run's hook runs after Prefect says Failed)."""

    def find() -> Any:
        experiments = [e.experiment_id for e in admin.search_experiments()]
        runs = admin.search_runs(
            experiments, filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'"
        )
        ended = [run for run in runs if run.info.status != "RUNNING"]
        return ended[0] if ended else None

    return poll(find, 60, f"the MLflow run of flow run {flow_run_id}")


def versions(admin: Any) -> list[int]:
    return sorted(int(v.version) for v in admin.search_model_versions(f"name = '{MODEL}'"))


def champion(admin: Any) -> Any:
    return admin.get_model_version_by_alias(MODEL, "champion")


def prefect_artifacts(stack: Stack, flow_run_id: UUID) -> dict[str, Any]:
    artifacts = stack.client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )
    return {artifact.key: artifact for artifact in artifacts}


def test_the_first_tracked_run_registered_version_1_and_made_it_champion(stack, admin):
    if not stack.runs:  # run alone: make the suite's first tracked run here
        assert stack.run_deployment("a").state.is_completed()
    experiments = [e.experiment_id for e in admin.search_experiments()]
    (first,) = admin.search_runs(experiments, order_by=["attributes.start_time ASC"], max_results=1)
    assert first.data.tags["mltoy.registry.version"] == "1"
    assert first.data.tags["mltoy.registry.new_version"] == "true"
    assert first.data.tags["mltoy.promotion.decision"] == "promoted"
    assert admin.get_model_version(MODEL, "1").run_id == first.info.run_id
    # Every run since had the default params, hence the same model: nothing else registered.
    assert versions(admin) == [1]
    assert str(champion(admin).version) == "1"


@pytest.mark.parametrize("option", ["a", "b"])
def test_each_option_logs_params_metrics_model_and_links_both_ways(
    stack, admin, mlflow_url, option, tmp_path
):
    before = versions(admin)
    run = stack.run_deployment(option)
    assert run.state.is_completed(), run.state.message
    logged = mlflow_run(admin, run.id)

    # Params and metrics: the run's params.yaml (the image's) and metrics.json.
    assert logged.data.params == flatten(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    metrics = stack.artifact_metrics(run.id)  # the run's metrics.json, as Prefect shows it
    assert logged.data.metrics == {name: float(value) for name, value in metrics.items()}
    experiment = admin.get_experiment(logged.info.experiment_id)
    assert experiment.name == f"{FLOWS[option]}/option-{option}"

    # MLflow -> Prefect: the run's id and its UI page, which opens.
    tags = logged.data.tags
    assert tags["prefect.flow_run_id"] == str(run.id)
    prefect_ui = f"http://127.0.0.1:{stack.env['PREFECT_PORT']}"
    assert tags["prefect.flow_run_url"].startswith(f"{prefect_ui}/")
    assert tags["prefect.flow_run_url"].endswith(f"/flow-run/{run.id}")
    user, password = stack.env["PREFECT_AUTH_STRING"].split(":", 1)
    assert (
        httpx.get(f"{prefect_ui}/api/flow_runs/{run.id}", auth=(user, password)).status_code == 200
    )
    # Prefect -> MLflow: a link artifact to the run's page in the MLflow UI.
    artifacts = prefect_artifacts(stack, run.id)
    url = f"{mlflow_url}/#/experiments/{logged.info.experiment_id}/runs/{logged.info.run_id}"
    assert artifacts["mltoy-model"].data.endswith(f"({url})"), artifacts["mltoy-model"].data
    assert "| decision |" in artifacts["mlflow-tracking"].data
    # MLflow -> Git: the commit the run cloned, the tip of main (this change, seeded).
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=stack.project_dir, capture_output=True, text=True
    ).stdout.strip()
    assert tags["mlflow.source.git.commit"] == head
    assert f"- commit: `{head}`" in artifacts["mltoy-run-report"].data

    # The same (default) model as the champion: no new version.
    assert tags["mltoy.registry.version"] == "1" and tags["mltoy.registry.new_version"] == "false"
    assert versions(admin) == before

    # The model downloads through MLflow's artifact proxy, with MLflow credentials only.
    import mlflow.artifacts

    assert not any(key.startswith("AWS_") for key in os.environ)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{MODEL}/1", dst_path=str(tmp_path)
    )
    files = {path.name for path in Path(local).iterdir()}
    assert {"MLmodel", "model.skops", "input_example.json"} <= files, files
    mlmodel = yaml.safe_load((Path(local) / "MLmodel").read_text())
    assert mlmodel["signature"]["inputs"] and "sklearn" in mlmodel["flavors"]


def test_a_worse_model_is_registered_and_the_champion_stays(stack, admin):
    before, kept = versions(admin), str(champion(admin).version)
    run = stack.run_deployment("a", parameters={"params": WORSE})
    assert run.state.is_completed(), run.state.message
    tags = mlflow_run(admin, run.id).data.tags
    assert versions(admin) == [*before, before[-1] + 1]
    assert tags["mltoy.registry.version"] == str(before[-1] + 1)
    assert tags["mltoy.promotion.decision"] == "kept"
    candidate = float(tags["mltoy.promotion.candidate"])
    champion_value = float(tags["mltoy.promotion.champion_before"])
    assert candidate < champion_value
    assert str(champion(admin).version) == kept
    # The report names the decision and both values.
    report = prefect_artifacts(stack, run.id)["mlflow-tracking"].data
    assert "**kept**" in report and str(candidate) in report and str(champion_value) in report


def test_a_better_model_becomes_champion(stack, admin):
    before = versions(admin)
    run = stack.run_deployment("b", parameters={"params": BETTER})
    assert run.state.is_completed(), run.state.message
    tags = mlflow_run(admin, run.id).data.tags
    new = str(before[-1] + 1)
    assert (tags["mltoy.registry.version"], tags["mltoy.promotion.decision"]) == (new, "promoted")
    assert float(tags["mltoy.promotion.candidate"]) > float(tags["mltoy.promotion.champion_before"])
    assert str(champion(admin).version) == new


def test_a_rerun_with_nothing_changed_adds_no_version(stack, admin):
    """A second run of the champion's params: cached, recorded, no new version."""
    seed = str(BETTER["split"]["seed"])
    if (
        not versions(admin)
        or admin.get_run(champion(admin).run_id).data.params["split.seed"] != seed
    ):  # run alone: the better model's first run, as the test before makes it
        assert stack.run_deployment("b", parameters={"params": BETTER}).state.is_completed()
    before, current = versions(admin), str(champion(admin).version)
    run = stack.run_deployment("b", parameters={"params": BETTER})
    assert run.state.is_completed(), run.state.message
    tags = mlflow_run(admin, run.id).data.tags
    assert tags["mltoy.cached"] == "true"  # every stage skipped, still recorded
    assert tags["mltoy.registry.new_version"] == "false"
    assert tags["mltoy.promotion.decision"] == "already champion"
    assert versions(admin) == before and str(champion(admin).version) == current


def test_the_champion_loads_by_alias_and_scores_the_logged_accuracy(stack, admin):
    import mlflow.pyfunc
    from sklearn.metrics import accuracy_score

    from mltoy.data import FEATURES, TARGET, iris_frame
    from mltoy.params import parse_params
    from mltoy.prepare import split_dataset

    version = champion(admin)
    logged = admin.get_run(version.run_id)
    # The test split of that run, made again from the raw data it was trained on.
    raw = iris_frame()
    csv = raw.to_csv(index=False, float_format="%.15g", lineterminator="\n").encode()
    assert hashlib.md5(csv).hexdigest() == logged.data.tags["dvc.md5.data/raw/iris.csv"]
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["split"] = {
        "test_size": float(logged.data.params["split.test_size"]),
        "seed": int(logged.data.params["split.seed"]),
    }
    _, test = split_dataset(raw, parse_params(params, source="the champion's run").split)

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    accuracy = accuracy_score(test[TARGET], model.predict(test[list(FEATURES)]))
    assert round(accuracy, 6) == logged.data.metrics["accuracy"]


def test_a_failed_run_is_logged_failed_and_never_registers(stack, admin):
    before = versions(admin)
    run = stack.run_deployment("a", parameters={"params": {"train": {"C": "strong"}}})
    assert run.state.is_failed()
    logged = mlflow_run(admin, run.id)
    assert logged.info.status == "FAILED"
    assert "train.C" in logged.data.tags["mltoy.error"]
    assert versions(admin) == before


def test_mlflow_refuses_unauthenticated_requests(stack, mlflow_url):
    search = "/api/2.0/mlflow/experiments/search"
    with httpx.Client(base_url=mlflow_url, timeout=10) as http:
        assert http.get("/").status_code == 401  # the UI
        assert http.post(search, json={"max_results": 1}).status_code == 401
        wrong = http.post(search, json={"max_results": 1}, auth=("admin", "wrong-password"))
        assert wrong.status_code == 401
        admin_auth = ("admin", stack.env["MLFLOW_ADMIN_PASSWORD"])
        assert http.get("/", auth=admin_auth).status_code == 200
        assert http.post(search, json={"max_results": 1}, auth=admin_auth).status_code == 200
        assert http.get("/health").status_code == 200  # the healthcheck's, tells nothing
        # The artifact proxy too: no download without a login.
        artifacts = "/api/2.0/mlflow-artifacts/artifacts"
        assert http.get(artifacts).status_code == 401


def _flows_login(stack: Stack) -> tuple[str, str]:
    """The flows' MLflow login, as flow containers read it from the settings volume."""
    script = (
        "import configparser, json; c = configparser.ConfigParser(interpolation=None); "
        "c.read('/run/mltoy/mlflow/credentials'); s = c['mlflow']; "
        "print(json.dumps([s['mlflow_tracking_username'], s['mlflow_tracking_password']]))"
    )
    user, password = stack.in_network(script)
    return user, password


def _server_bucket_secret(stack: Stack) -> str:
    script = (
        "import configparser, json; c = configparser.ConfigParser(); "
        "c.read('/run/mlflow-server/aws/credentials'); "
        "print(json.dumps(c['default']['aws_secret_access_key']))"
    )
    return stack.in_network(script)


def test_flows_use_their_own_non_admin_login(stack, mlflow_url):
    user, password = _flows_login(stack)
    assert user == "mltoy-flows" and password != stack.env["MLFLOW_ADMIN_PASSWORD"]
    with httpx.Client(base_url=mlflow_url, timeout=10, auth=(user, password)) as http:
        search = http.post("/api/2.0/mlflow/experiments/search", json={"max_results": 5})
        assert search.status_code == 200
        created = http.post(
            "/api/2.0/mlflow/users/create", json={"username": "intruder", "password": "x" * 16}
        )
        assert created.status_code == 403  # not an admin


def test_no_mlflow_database_or_bucket_credential_reaches_flow_containers(stack):
    """A run's container: its environment, and every file of the volume it mounts; and the
    logs of every run so far. The secrets are this stack's (random, per session)."""
    secrets = {
        "MLFLOW_DB_PASSWORD": stack.env["MLFLOW_DB_PASSWORD"],
        "MLFLOW_ADMIN_PASSWORD": stack.env["MLFLOW_ADMIN_PASSWORD"],
        "the MLflow server's bucket key": _server_bucket_secret(stack),
        "POSTGRES_PASSWORD": stack.env["POSTGRES_PASSWORD"],
    }
    run_id = stack.trigger("b")
    stack.wait_state(run_id, {"Running"}, timeout=120)
    container = stack.flow_container(run_id)
    inspect = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    ).stdout
    env = json.loads(inspect)[0]["Config"]["Env"]
    assert "MLFLOW_TRACKING_URI=http://mlflow:5000" in env
    assert not [v for v in env if v.startswith(("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET"))]
    volume = stack.in_network(
        "import json, pathlib; print(json.dumps({str(p): p.read_text() for p in "
        "pathlib.Path('/run/mltoy').rglob('*') if p.is_file()}))"
    )
    assert "/run/mltoy/mlflow/credentials" in volume  # the flows' own login, nothing else
    run = stack.wait_final(run_id)
    assert run.state.is_completed(), run.state.message
    logs = "\n".join(
        stack.logs(run_id) + [m for r in stack.runs.get("a", []) for m in stack.logs(r)]
    )
    for name, secret in secrets.items():
        assert secret not in inspect, name
        assert not any(secret in text for text in volume.values()), name
        assert secret not in logs, name


def test_mlflow_init_is_idempotent_and_mlflow_cannot_reach_prefects_database(stack):
    """The step that makes MLflow's role and databases works on a database volume that
    already exists (the stack's, made without them by the postgres image)."""
    again = stack.compose("run", "--rm", "--no-deps", "mlflow-init")
    assert "role and databases up to date" in again.stdout, again.stdout + again.stderr
    password = stack.env["MLFLOW_DB_PASSWORD"]

    def connect(database: str) -> subprocess.CompletedProcess[str]:
        return stack.compose(
            *("exec", "-T", "-e", f"PGPASSWORD={password}", "postgres"),
            *("psql", "-h", "127.0.0.1", "-U", "mlflow", "-d", database, "-tAc", "select 1"),
            check=False,
        )

    assert connect("mlflow").stdout.strip() == "1"
    refused = connect("prefect")
    assert refused.returncode != 0 and "permission denied" in refused.stderr


def test_mlflow_down_the_run_completes_and_says_tracking_was_skipped(stack, admin):
    """The policy: tracking never fails the pipeline; the model is in DVC, and the next run
    with MLflow back records it (same md5, already in the remote)."""
    params = {"split": {"seed": 7}}  # a model no run has made yet
    stack.compose("stop", "mlflow")
    try:
        run = stack.run_deployment("b", parameters={"params": params})
    finally:
        stack.compose("up", "-d", "--wait", "--no-build", "mlflow")
    assert run.state.is_completed(), run.state.message
    logs = stack.logs_with(run.id, "MLflow tracking skipped")
    assert any("http://mlflow:5000" in line for line in logs if "skipped" in line), logs
    assert "Tracking skipped" in prefect_artifacts(stack, run.id)["mlflow-tracking"].data

    after = stack.run_deployment("b", parameters={"params": params})
    assert after.state.is_completed(), after.state.message
    tags = mlflow_run(admin, after.id).data.tags
    assert tags["mltoy.cached"] == "true"  # the outage run's outputs were all kept
    md5 = tags["dvc.md5.models/model.joblib"]
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in stack.bucket()
