"""The work pool's base job template: the API refuses any variable but image, env and
mem_limit, and what reaches the worker is the pool's fixed settings."""

from __future__ import annotations

import asyncio

import pytest
from prefect.utilities.schema_tools import ValidationError
from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

from deploy.work_pool import FlowContainerSettings, base_job_template, size_bytes
from tests.support import validate_job_variables

IMAGE = "mltoy/bundle:0.1.0"


@pytest.fixture
def settings(monkeypatch) -> FlowContainerSettings:
    monkeypatch.setenv("MLTOY_IMAGE", IMAGE)
    monkeypatch.setenv("MLTOY_NETWORK", "mltoy-net")
    monkeypatch.setenv("MLTOY_SETTINGS_VOLUME", "mltoy-remote-settings")
    return FlowContainerSettings()


def test_the_deployments_job_variables_are_accepted(settings):
    template = base_job_template(settings)
    validate_job_variables(
        template, {"image": IMAGE, "env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "mltoy"}}
    )
    validate_job_variables(template, {"image": "mltoy/bundle:other-tag", "mem_limit": "2g"})
    validate_job_variables(template, {})  # the defaults alone


@pytest.mark.parametrize(
    ("job_variables", "named"),
    [
        ({"volumes": ["mltoy_postgres-data:/steal:ro"]}, "volumes"),
        ({"container_create_kwargs": {"user": "999"}}, "container_create_kwargs"),
        ({"command": "sh -c 'exit 0'"}, "command"),
        ({"privileged": True}, "privileged"),
        ({"network_mode": "host"}, "network_mode"),
        ({"image_pull_policy": "Always"}, "image_pull_policy"),
        ({"networks": ["bridge"]}, "networks"),
        ({"auto_remove": False}, "auto_remove"),
        ({"image": "debian:bookworm"}, "debian:bookworm"),
        ({"image": "mltoy/bundle"}, "mltoy/bundle"),  # no tag: "latest", maybe pulled
        ({"image": "mltoy/bundle@sha256:" + "0" * 64}, "sha256"),
        ({"image": None}, "image"),
        ({"mem_limit": "64g"}, "64g"),
        ({"env": {"A": 1}}, "env"),
    ],
)
def test_anything_else_is_refused_naming_it(settings, job_variables, named):
    with pytest.raises(ValidationError) as info:
        validate_job_variables(base_job_template(settings), job_variables)
    assert named in str(info.value)


def test_the_worker_gets_the_pools_settings_whatever_the_run_sends(settings):
    """Even variables that got past the API (an older pool, a schedule) cannot reach
    the container: the template has no placeholder for them."""
    escape = {
        "image": IMAGE,
        "volumes": ["/:/host"],
        "privileged": True,
        "command": "sh",
        "container_create_kwargs": {"user": "0"},
        "network_mode": "host",
    }
    config = asyncio.run(
        DockerWorkerJobConfiguration.from_template_and_values(
            base_job_template(settings),
            escape,
            client=object(),  # no block to resolve
        )
    )
    assert config.volumes == ["mltoy-remote-settings:/run/mltoy:ro"]
    assert config.privileged is False
    assert config.command is None  # the worker puts `prefect flow-run execute`
    assert config.network_mode is None and config.networks == ["mltoy-net"]
    assert config.image_pull_policy == "Never" and config.auto_remove is True
    kwargs = config.container_create_kwargs
    assert kwargs["user"] == "1000:1000" and kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["pids_limit"] == 512 and kwargs["nano_cpus"] == 10**9
    assert config.mem_limit == config.memswap_limit == "1g"
    assert kwargs["log_config"]["config"]["max-size"] == "10m"


def test_the_template_is_valid_for_prefects_docker_worker(settings):
    """Every fixed key is a field of the worker's job configuration."""
    default = DockerWorker.get_default_base_job_template()["job_configuration"]
    assert set(base_job_template(settings)["job_configuration"]) == set(default)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLTOY_FLOW_USER", "0:0"),
        ("MLTOY_FLOW_USER", "mltoy"),
        ("MLTOY_FLOW_USER", "1000"),  # the group would come from the image
        ("MLTOY_IMAGE", "mltoy/bundle"),
        ("MLTOY_FLOW_MEMORY_MAX", "lots"),
    ],
)
def test_bad_pool_settings_are_refused(settings, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        base_job_template(FlowContainerSettings())


def test_memory_sizes_are_bounded_by_the_maximum(settings, monkeypatch):
    assert size_bytes("2g") == 2 * 1024**3 and size_bytes("512m") == 512 * 1024**2
    monkeypatch.setenv("MLTOY_FLOW_MEMORY_MAX", "4g")
    choices = base_job_template(FlowContainerSettings())["variables"]["properties"]
    assert choices["mem_limit"]["enum"] == ["256m", "512m", "1g", "2g", "4g"]
