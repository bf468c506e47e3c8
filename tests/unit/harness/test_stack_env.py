"""The stack driver's .env: what `make up` writes from the driver's settings (make env) holds
every value compose requires, fresh secrets, and the driver's own names and images."""

from __future__ import annotations

import re

from harness import REPO_ROOT
from harness.stack import stack_settings
from tests.e2e.stack import TEST_LIMITS
from tests.unit.test_make_env import load

PREPARED = {
    "BASE_IMAGE": "base:1",
    "MLTOY_IMAGE": "mltoy/bundle:t",
    "PROXY_IMAGE": "mltoy/socket-proxy:t",
    "GIT_IMAGE": "mltoy/git-server:t",
    "MLFLOW_IMAGE": "mltoy/mlflow:t",
    "S3_IMAGE": "mltoy/s3-standin:t",
    "POSTGRES_IMAGE": "mltoy/postgres-standin:t",
    "COMPOSE_FILES": "compose.yaml:compose.standin.yaml:compose.mlflow.yaml",
}
# Read by the Makefile from the environment, not from .env.
MAKE_ONLY = {"MLTOY_BUILD"}


def env_of(settings: dict[str, str]) -> dict[str, str]:
    """The .env `make up` writes (make env), given the driver's settings."""
    return load().build({"DOCKER_GID": "999", **settings}, available=lambda image: True)


def test_the_env_sets_every_value_compose_requires():
    compose_files = PREPARED["COMPOSE_FILES"].split(":")
    required = set()
    for name in compose_files:
        required |= set(re.findall(r"\$\{(\w+):\?", (REPO_ROOT / name).read_text()))
    assert required and required <= set(env_of(stack_settings(PREPARED, "p")))


def test_every_setting_of_the_driver_reaches_the_env():
    """make env keeps only settings it knows (.env.example's): one it drops would leave
    the stack on a default (another project's names, a shipped limit) without a word."""
    settings = {**stack_settings(PREPARED, "p"), **TEST_LIMITS}
    env = env_of(settings)
    for key, value in settings.items():
        assert key in MAKE_ONLY or env.get(key) == value, key


def test_fresh_secrets_and_names_derived_from_the_project():
    one, two = env_of(stack_settings(PREPARED, "proj")), env_of(stack_settings(PREPARED, "proj"))
    for secret in ("S3_ROOT_PASSWORD", "POSTGRES_PASSWORD", "PREFECT_AUTH_STRING", "GIT_PASSWORD"):
        assert one[secret] != two[secret] and len(one[secret]) >= 24
    assert one["COMPOSE_PROJECT_NAME"] == "proj"
    assert one["MLTOY_NETWORK"] == "proj-net" and one["MLTOY_WORK_POOL"] == "proj-pool"
    assert one["MLTOY_IMAGE"] == PREPARED["MLTOY_IMAGE"]
    assert one["COMPOSE_FILE"] == PREPARED["COMPOSE_FILES"]
    ports = [one[key] for key in ("PREFECT_PORT", "GIT_PORT", "S3_PORT", "MLFLOW_PORT")]
    assert len(set(ports)) == len(ports)
