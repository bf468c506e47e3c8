"""k8s/prefect.k8s.yaml runs what prefect.yaml runs, on the Kubernetes pool the Helm
worker polls."""

from __future__ import annotations

import pytest

from tests.unit.k8s.conftest import load_yaml

SAME = ["entrypoint", "parameters", "schedules", "concurrency_limit", "version"]


@pytest.fixture(scope="module")
def compose_deployments() -> dict[str, dict]:
    return {d["name"]: d for d in load_yaml("prefect.yaml")["deployments"]}


def test_option_a_and_b_match_prefect_yaml_but_for_the_pool(compose_deployments):
    k8s = {d["name"]: d for d in load_yaml("k8s/prefect.k8s.yaml")["deployments"]}
    assert set(k8s) == {"option-a", "option-b"}
    for name, deployment in k8s.items():
        for key in SAME:
            assert deployment[key] == compose_deployments[name][key], (name, key)


def test_the_pull_steps_are_prefect_yamls():
    assert load_yaml("k8s/prefect.k8s.yaml")["pull"] == load_yaml("prefect.yaml")["pull"]


def test_the_flow_env_is_prefect_yamls_less_the_test_only_emulator_settings():
    docker_env = load_yaml("prefect.yaml")["definitions"]["job_variables"]["env"]
    k8s_env = load_yaml("k8s/prefect.k8s.yaml")["definitions"]["job_variables"]["env"]
    emulator = {"STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"}
    assert k8s_env == {k: v for k, v in docker_env.items() if k not in emulator}


def test_every_deployment_uses_the_pool_the_worker_polls(k8s_deployments, worker_values):
    pool = worker_values["worker"]["config"]["workPool"]
    assert {d["work_pool"]["name"] for d in k8s_deployments.values()} == {pool}


def test_flow_jobs_run_where_the_worker_may_act_and_not_beside_the_server(template, worker_values):
    """A rewritten template can mount any Secret of the Jobs' namespace: the database
    password lives in the server's."""
    worker = worker_values["worker"]
    namespace = template["job_configuration"]["namespace"]
    assert namespace == worker["config"]["jobNamespace"] == worker_values["role"]["namespace"]
    server_namespace = worker["selfHostedServerApiConfig"]["apiUrl"].split(".")[1]
    assert server_namespace == "mltoy" != namespace
