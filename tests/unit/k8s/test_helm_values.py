"""k8s/helm/*.values.yaml against the charts' own files, vendored (k8s/helm/vendor/):
what `helm install` checks (the defaults merged with ours, against values.schema.json)
and what it does not (a key the chart does not know is ignored: a typo would silently
leave a default, e.g. a password, in place)."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from deploy.k8s_work_pool import KubernetesPoolSettings, base_job_template
from harness import REPO_ROOT
from tests.unit.k8s.conftest import IMAGE, load_yaml

VENDOR = REPO_ROOT / "k8s" / "helm" / "vendor"
CHARTS = ["prefect-server", "prefect-worker"]
SchemaError = jsonschema.ValidationError


def merged(defaults: dict, overrides: dict) -> dict:
    """Helm's coalescing of values: maps merge key by key, anything else replaces."""
    result = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def undocumented_keys(defaults: dict, ours: dict, path: str = "") -> list[str]:
    """Keys of ours that the chart's values.yaml lacks, where it lists its keys (a
    non-empty map); below an empty map or a list, the chart takes anything."""
    missing = []
    for key, value in ours.items():
        if key not in defaults:
            missing.append(path + key)
        elif isinstance(value, dict) and isinstance(defaults[key], dict) and defaults[key]:
            missing += undocumented_keys(defaults[key], value, f"{path}{key}.")
    return missing


def chart_check(chart: str, values: dict) -> None:
    """Raises what helm install would (schema) and what it would silently ignore (keys)."""
    defaults = load_yaml(f"k8s/helm/vendor/{chart}/values.yaml")
    schema = json.loads((VENDOR / chart / "values.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(merged(defaults, values))
    missing = undocumented_keys(defaults, values)
    if missing:
        raise KeyError(f"{chart}: keys the chart does not document: {missing}")


@pytest.fixture
def values(request) -> dict:
    return load_yaml(f"k8s/helm/{request.param}.values.yaml")


@pytest.fixture
def worker_values_with_template(worker_values, monkeypatch) -> dict:
    """As installed: the pool's template given with --set-file (a JSON string)."""
    monkeypatch.setenv("MLTOY_K8S_IMAGE", IMAGE)
    values = copy.deepcopy(worker_values)
    template = json.dumps(base_job_template(KubernetesPoolSettings()))
    values["worker"]["config"]["baseJobTemplate"]["configuration"] = template
    return values


@pytest.mark.parametrize("values", CHARTS, indirect=True)
def test_the_values_validate_against_the_charts_schema_and_documented_keys(request, values):
    chart_check(request.node.callspec.params["values"], values)


def test_the_worker_values_with_the_pools_template_validate(worker_values_with_template):
    chart_check("prefect-worker", worker_values_with_template)


@pytest.mark.parametrize(
    ("chart", "path", "value", "error", "named"),
    [
        # Caught by the schema, as helm install would.
        ("prefect-worker", ("worker", "apiConfig"), "selfHosted", SchemaError, "selfHosted"),
        ("prefect-worker", ("worker", "config", "limit"), "4", SchemaError, "'4' is not of"),
        ("prefect-worker", ("worker", "config", "workpool"), "x", SchemaError, "workpool"),
        ("prefect-server", ("server", "basicAuth", "enabled"), "yes", SchemaError, "'yes'"),
        # Not in the schema (helm would ignore them): caught by the documented keys.
        ("prefect-server", ("server", "basicAuth", "existingSecrets"), "x", KeyError, "Secrets"),
        ("prefect-server", ("externalDatabase", "passwordSecretkey"), "x", KeyError, "Secretkey"),
    ],
)
def test_a_wrong_value_or_a_misspelled_key_is_rejected(chart, path, value, error, named):
    values = load_yaml(f"k8s/helm/{chart}.values.yaml")
    *parents, last = path
    node = values
    for key in parents:
        node = node[key]
    node[last] = value
    with pytest.raises(error, match=named):
        chart_check(chart, values)


def test_no_password_has_a_default_both_come_from_secrets():
    server = load_yaml("k8s/helm/prefect-server.values.yaml")
    worker = load_yaml("k8s/helm/prefect-worker.values.yaml")
    # The chart's bundled PostgreSQL (password "prefect-rocks") off, the external one's
    # password from a Secret; no literal password or connection string anywhere.
    assert server["postgresql"]["enabled"] is False
    database = server["externalDatabase"]
    assert database["existingSecret"] and database["passwordSecretKey"]
    assert not {"password", "connectionString"} & set(database)
    # Basic auth on, the auth string from a Secret (the chart's default is "admin:pass").
    server_auth = server["server"]["basicAuth"]
    worker_auth = worker["worker"]["selfHostedServerApiConfig"]["basicAuth"]
    for auth in (server_auth, worker_auth):
        assert auth["enabled"] is True and "authString" not in auth
    assert server_auth["existingSecret"] == worker_auth["existingSecret"]


def test_the_worker_runs_the_kubernetes_worker_of_the_pinned_prefect():
    worker = load_yaml("k8s/helm/prefect-worker.values.yaml")["worker"]
    server = load_yaml("k8s/helm/prefect-server.values.yaml")
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert worker["config"]["type"] == "kubernetes"
    for tag in (worker["image"]["prefectTag"], server["global"]["prefect"]["image"]["prefectTag"]):
        assert f'"prefect=={tag.split("-")[0]}"' in pyproject, tag
