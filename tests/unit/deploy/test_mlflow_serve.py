"""The MLflow server's launcher (docker/mlflow/serve.py): its basic-auth ini, read back as
MLflow's auth config reads it (configparser, section [mlflow]; mlflow.server.auth itself
needs the server's Flask extras, which only the MLflow image has)."""

from __future__ import annotations

import configparser

from harness import load_script

serve = load_script("docker/mlflow/serve.py", "mlflow_serve")


def read_back(ini: str) -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read_string(ini)
    return config["mlflow"]


def test_mlflow_reads_the_users_database_with_a_password_that_needs_quoting() -> None:
    uri = serve.database_uri("p%w@d:/?#", "mlflow_auth")
    config = read_back(serve.auth_config(uri))
    assert config["database_uri"] == uri
    assert config["default_permission"] == "READ"
    assert config["authorization_function"].endswith(":authenticate_request_basic_auth")


def test_checked_logins_are_cached_so_each_request_skips_the_password_hash() -> None:
    uri = serve.database_uri("secret", "mlflow_auth")
    assert read_back(serve.auth_config(uri)).getint("auth_cache_ttl_seconds") == 60
    off = read_back(serve.auth_config(uri, cache_seconds=0))
    assert off.getint("auth_cache_ttl_seconds") == 0
