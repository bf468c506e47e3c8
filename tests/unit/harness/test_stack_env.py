"""The stack driver's .env: every value compose requires, fresh secrets, our own names."""

from __future__ import annotations

import re

from harness import REPO_ROOT
from harness.stack import stack_env

PREPARED = {
    "BASE_IMAGE": "base:1",
    "MLTOY_IMAGE": "mltoy/bundle:t",
    "PROXY_IMAGE": "mltoy/socket-proxy:t",
    "S3_IMAGE": "mltoy/s3-standin:t",
    "POSTGRES_IMAGE": "mltoy/postgres-standin:t",
    "COMPOSE_FILES": "compose.yaml:compose.standin.yaml",
}


def test_stack_env_sets_every_value_compose_requires():
    required = set()
    for name in ("compose.yaml", "compose.standin.yaml"):
        required |= set(re.findall(r"\$\{(\w+):\?", (REPO_ROOT / name).read_text()))
    assert required and required <= set(stack_env(PREPARED, 999, "p"))


def test_stack_env_has_fresh_secrets_and_names_derived_from_the_project():
    one, two = stack_env(PREPARED, 999, "proj"), stack_env(PREPARED, 999, "proj")
    for secret in ("S3_ROOT_PASSWORD", "POSTGRES_PASSWORD", "PREFECT_AUTH_STRING"):
        assert one[secret] != two[secret] and len(one[secret]) >= 24
    assert one["MLTOY_NETWORK"] == "proj-net" and one["MLTOY_WORK_POOL"] == "proj-pool"
    assert one["DOCKER_GID"] == "999" and one["MLTOY_IMAGE"] == "mltoy/bundle:t"
