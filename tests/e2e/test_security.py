"""Security defaults of the running stack: auth, exposure, users, secrets."""

from __future__ import annotations

import json
import subprocess

import httpx

from tests.e2e.stack import Stack

OUR_IMAGES_USER = {"MLTOY_IMAGE": "mltoy"}


def test_api_refuses_unauthenticated_requests(stack: Stack):
    with httpx.Client(base_url=stack.api_url, timeout=10) as http:
        assert http.post("/deployments/filter", json={}).status_code == 401
        assert http.post("/flow_runs/filter", json={}, auth=("admin", "wrong")).status_code == 401
        user, password = stack.env["PREFECT_AUTH_STRING"].split(":", 1)
        assert http.post("/deployments/filter", json={}, auth=(user, password)).status_code == 200
        # Liveness stays open for healthchecks, and tells nothing.
        assert http.get("/health").status_code == 200


def test_only_the_ui_api_port_is_published_on_loopback(stack: Stack):
    published = []
    for line in stack.compose("ps", "--format", "json").stdout.splitlines():
        service = json.loads(line)
        for port in service.get("Publishers") or []:
            if port.get("PublishedPort"):
                published.append((service["Service"], port["URL"], port["TargetPort"]))
    assert published == [("prefect-server", "127.0.0.1", 4200)]


def test_containers_run_as_non_root(stack: Stack):
    for service in ("prefect-server", "worker", "postgres"):
        uid = stack.compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid != "0", service
    user = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Config.User}}", stack.env["MLTOY_IMAGE"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert user == "mltoy"  # the flow-run containers use this image as it is


def _secrets(stack: Stack) -> list[str]:
    return [
        stack.env["S3_ROOT_PASSWORD"],
        stack.env["POSTGRES_PASSWORD"],
        stack.env["PREFECT_AUTH_STRING"].split(":", 1)[1],
    ]


def test_no_secret_in_any_image_layer(stack: Stack):
    images = [stack.env["MLTOY_IMAGE"], stack.env["S3_IMAGE"], stack.env["POSTGRES_IMAGE"]]
    for image in images:
        history = subprocess.run(
            ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        inspect = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
        ).stdout
        for secret in _secrets(stack):
            assert secret not in history and secret not in inspect, image
        assert "PRIVATE KEY" not in history + inspect


def test_secrets_never_appear_in_logs(stack: Stack):
    """After every run the suite made so far: container logs and flow-run logs."""
    logs = stack.compose("logs", "--no-color").stdout
    for runs in stack.runs.values():
        for run_id in runs:
            logs += "\n".join(stack.logs(run_id))
    assert len(logs) > 1000  # there is something to search
    for secret in _secrets(stack):
        assert secret not in logs


def test_flow_containers_get_no_credentials_in_their_environment(stack: Stack):
    """Credentials reach flows through a read-only volume, not env or job variables."""
    deployment = stack.client.read_deployment(stack.deployment_id("a"))
    env = deployment.job_variables.get("env", {})
    assert not any("SECRET" in key or "PASSWORD" in key for key in env)
    volumes = deployment.job_variables["volumes"]
    assert volumes == [f"{stack.env['MLTOY_SETTINGS_VOLUME']}:/run/mltoy:ro"]
