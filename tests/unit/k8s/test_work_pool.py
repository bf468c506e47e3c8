"""The Kubernetes pool's template: the API refuses any variable but image, env and
memory_limit; the settings Secret lands where the image looks for each file."""

from __future__ import annotations

import re

import pytest
from prefect.utilities.schema_tools import ValidationError

from deploy.k8s_work_pool import SETTINGS_FILES, KubernetesPoolSettings, base_job_template
from harness import REPO_ROOT
from tests.support import validate_job_variables
from tests.unit.k8s.conftest import IMAGE


def test_the_deployments_job_variables_are_accepted(template, k8s_deployments):
    for deployment in k8s_deployments.values():
        validate_job_variables(template, deployment["work_pool"]["job_variables"])
    validate_job_variables(
        template, {"image": "registry.example.com/mltoy/bundle@sha256:" + "0" * 64}
    )
    validate_job_variables(template, {"memory_limit": "2Gi"})
    validate_job_variables(template, {})  # the defaults alone


@pytest.mark.parametrize(
    ("job_variables", "named"),
    [
        # Every variable of Prefect's default Kubernetes template but image and env.
        ({"namespace": "kube-system"}, "namespace"),
        ({"service_account_name": "cluster-admin"}, "service_account_name"),
        ({"image_pull_policy": "Always"}, "image_pull_policy"),
        ({"labels": {"a": "b"}}, "labels"),
        ({"annotations": {"a": "b"}}, "annotations"),
        ({"command": "sh -c 'exit 0'"}, "command"),
        ({"cpu_limit": "64"}, "cpu_limit"),
        ({"backoff_limit": 6}, "backoff_limit"),
        ({"cluster_config": {}}, "cluster_config"),
        ({"finished_job_ttl": 0}, "finished_job_ttl"),
        ({"image": "debian:bookworm"}, "debian:bookworm"),
        ({"image": "registry.example.com/mltoy/bundle"}, "bundle"),  # no tag: "latest"
        ({"image": "registry.example.com/mltoy/other:0.1.0"}, "other"),
        ({"memory_limit": "4Gi"}, "4Gi"),  # above MLTOY_K8S_FLOW_MEMORY_MAX
        ({"env": {"A": ["x"]}}, "is not of type"),
    ],
)
def test_the_api_refuses_what_the_pool_does_not_expose(template, job_variables, named):
    with pytest.raises(ValidationError, match=re.escape(named)):
        validate_job_variables(template, job_variables)


def test_it_is_prefects_default_with_fewer_variables(template):
    """Each exposed variable is one of Prefect's Kubernetes worker's own, or its memory."""
    from prefect_kubernetes.worker import KubernetesWorker

    default = KubernetesWorker.get_default_base_job_template()
    ours = set(template["variables"]["properties"])
    assert ours == {"image", "env", "memory_limit"}
    assert ours <= set(default["variables"]["properties"])
    assert set(template["job_configuration"]) <= set(default["job_configuration"])


def test_memory_sizes_stop_at_the_maximum_and_the_default_must_be_one(monkeypatch):
    monkeypatch.setenv("MLTOY_K8S_IMAGE", IMAGE)
    monkeypatch.setenv("MLTOY_K8S_FLOW_MEMORY_MAX", "4g")
    choices = KubernetesPoolSettings().memory_choices()
    assert choices == ["256Mi", "512Mi", "1Gi", "2Gi", "4Gi"]
    monkeypatch.setenv("MLTOY_K8S_FLOW_MEMORY", "8g")
    with pytest.raises(ValueError, match="MLTOY_K8S_FLOW_MEMORY=8g"):
        base_job_template(KubernetesPoolSettings())


@pytest.mark.parametrize(
    "image", ["mltoy/bundle:0.1.0", "registry.example.com/mltoy/bundle", "registry.example.com/b:"]
)
def test_the_image_must_be_a_registrys_tag_or_digest(monkeypatch, image):
    """A cluster pulls: a repository without a registry host is Docker Hub's."""
    monkeypatch.setenv("MLTOY_K8S_IMAGE", image)
    with pytest.raises(ValueError, match="image"):
        KubernetesPoolSettings()


def test_the_secrets_files_land_where_the_image_and_remote_init_look_for_them():
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    paths = {f"/run/mltoy/{path}" for path in SETTINGS_FILES.values()}
    for variable in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "GIT_CONFIG_GLOBAL"):
        (value,) = re.findall(rf"\b{variable}=(\S+)", dockerfile)
        assert value in paths, variable
    (dvc_dir,) = re.findall(r"\bDVC_GLOBAL_CONFIG_DIR=(\S+)", dockerfile)
    assert f"{dvc_dir}/config" in paths
    # git/config's credential helper prints this file (deploy/remote_init.py).
    assert "/run/mltoy/git/credentials" in paths
