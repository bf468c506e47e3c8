"""The Kubernetes path's files, resolved as `prefect deploy` and the Helm chart would."""

from __future__ import annotations

import os

import pytest
import yaml
from prefect.utilities.templating import apply_values

from deploy.k8s_work_pool import KubernetesPoolSettings, base_job_template
from harness import REPO_ROOT

IMAGE = "registry.example.com/mltoy/bundle:0.1.0"
# What `prefect deploy` would find in its environment (k8s/prefect.k8s.yaml's `{{ $VAR }}`).
DEPLOY_ENV = {
    "MLTOY_K8S_IMAGE": IMAGE,
    "MLTOY_GIT_URL": "https://git.example.com/mltoy.git",
    "MLTOY_RESULTS_URL": "s3://mltoy-dvc/prefect-results",
    "PREFECT_UI_URL": "https://prefect.example.com",
    "MLFLOW_TRACKING_URI": "",
    "MLTOY_MLFLOW_UI_URL": "",
    "MLTOY_PROMOTION_METRIC": "",
}


def load_yaml(relpath: str) -> dict:
    return yaml.safe_load((REPO_ROOT / relpath).read_text())


@pytest.fixture
def pool_settings(monkeypatch) -> KubernetesPoolSettings:
    monkeypatch.setenv("MLTOY_K8S_IMAGE", IMAGE)
    return KubernetesPoolSettings()


@pytest.fixture
def template(pool_settings) -> dict:
    return base_job_template(pool_settings)


@pytest.fixture
def k8s_deployments(monkeypatch) -> dict[str, dict]:
    """k8s/prefect.k8s.yaml's deployments by name, `{{ $VAR }}` filled as the CLI does
    (prefect/cli/deploy/_core.py: from the environment)."""
    for name, value in DEPLOY_ENV.items():
        monkeypatch.setenv(name, value)
    config = apply_values(load_yaml("k8s/prefect.k8s.yaml"), os.environ, remove_notset=False)
    return {deployment["name"]: deployment for deployment in config["deployments"]}


@pytest.fixture(scope="session")
def worker_values() -> dict:
    return load_yaml("k8s/helm/prefect-worker.values.yaml")
