"""Security defaults of the running stack: auth, exposure, users, secrets."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack

OUR_IMAGES_USER = {"MLTOY_IMAGE": "mltoy"}

# Run on the stack's network with remote-init's settings: the root key from its env, the
# flows' key from the remote-settings volume. Tries, with the flows' key, what flows do and
# what they must not; prints {what: "ok" | error code}.
FLOW_KEY_SCRIPT = """
import configparser, json, os
from botocore.exceptions import ClientError
from botocore.session import get_session

def client(service, key_id, secret):
    return get_session().create_client(
        service, endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=key_id, aws_secret_access_key=secret)

creds = configparser.ConfigParser()
creds.read("/run/mltoy/aws/credentials")
flow_id = creds["default"]["aws_access_key_id"]
flow_secret = creds["default"]["aws_secret_access_key"]
root_id, root_secret = os.environ["S3_ROOT_USER"], os.environ["S3_ROOT_PASSWORD"]
bucket = os.environ["DVC_REMOTE_URL"].split("/")[2]
other = bucket + "-not-dvc"
root, s3 = client("s3", root_id, root_secret), client("s3", flow_id, flow_secret)
root.create_bucket(Bucket=other)
attempts = {
    "put": lambda: s3.put_object(Bucket=bucket, Key="e2e/probe", Body=b"probe"),
    "get": lambda: s3.get_object(Bucket=bucket, Key="e2e/probe")["Body"].read(),
    "head": lambda: s3.head_object(Bucket=bucket, Key="e2e/probe"),
    "list": lambda: s3.list_objects_v2(Bucket=bucket, Prefix="e2e/"),
    "delete": lambda: s3.delete_object(Bucket=bucket, Key="e2e/probe"),
    "create_bucket": lambda: s3.create_bucket(Bucket=bucket + "-new"),
    "list_all_buckets": lambda: s3.list_buckets(),
    "put_other_bucket": lambda: s3.put_object(Bucket=other, Key="x", Body=b"x"),
    "list_other_bucket": lambda: s3.list_objects_v2(Bucket=other),
    "delete_dvc_bucket": lambda: s3.delete_bucket(Bucket=bucket),
    "iam_create_user": lambda: client("iam", flow_id, flow_secret).create_user(UserName="x"),
}
out = {}
for name, attempt in attempts.items():
    try:
        attempt()
        out[name] = "ok"
    except ClientError as exc:
        out[name] = exc.response["Error"]["Code"]
root.delete_bucket(Bucket=other)
out["flow_key_is_root"] = flow_id == root_id or flow_secret == root_secret
out["flow_secret"] = flow_secret
print(json.dumps(out))
"""


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


@pytest.fixture(scope="module")
def flow_key_attempts(stack: Stack) -> dict[str, Any]:
    return stack.in_network(FLOW_KEY_SCRIPT)


def test_flow_runs_get_a_key_limited_to_the_dvc_bucket(flow_key_attempts: dict[str, Any]):
    """The credentials in the remote-settings volume are not the store's root key; with
    them, objects in the DVC bucket can be written, read, listed and deleted, and nothing
    else is allowed (the stand-in enforces IAM as a real store does)."""
    result = dict(flow_key_attempts)
    assert result.pop("flow_key_is_root") is False
    result.pop("flow_secret")
    assert result == {
        "put": "ok",
        "get": "ok",
        "head": "ok",
        "list": "ok",
        "delete": "ok",
        "create_bucket": "AccessDenied",
        "list_all_buckets": "AccessDenied",
        "put_other_bucket": "AccessDenied",
        "list_other_bucket": "AccessDenied",
        "delete_dvc_bucket": "AccessDenied",
        "iam_create_user": "AccessDenied",
    }


@pytest.fixture
def secrets(stack: Stack, flow_key_attempts: dict[str, Any]) -> list[str]:
    """The stack's passwords and the flows' secret key."""
    prefect_password = stack.env["PREFECT_AUTH_STRING"].split(":", 1)[1]
    return [
        stack.env["S3_ROOT_PASSWORD"],
        stack.env["POSTGRES_PASSWORD"],
        prefect_password,
        flow_key_attempts["flow_secret"],
    ]


def test_no_secret_in_any_image_layer(stack: Stack, secrets: list[str]):
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
        for secret in secrets:
            assert secret not in history and secret not in inspect, image
        assert "PRIVATE KEY" not in history + inspect


def test_secrets_never_appear_in_logs(stack: Stack, secrets: list[str]):
    """After every run the suite made so far: container logs and flow-run logs."""
    logs = stack.compose("logs", "--no-color").stdout
    for runs in stack.runs.values():
        for run_id in runs:
            logs += "\n".join(stack.logs(run_id))
    assert len(logs) > 1000  # there is something to search
    for secret in secrets:
        assert secret not in logs


def test_flow_containers_get_no_credentials_in_their_environment(stack: Stack):
    """Credentials reach flows through a read-only volume, not env or job variables."""
    deployment = stack.client.read_deployment(stack.deployment_id("a"))
    env = deployment.job_variables.get("env", {})
    assert not any("SECRET" in key or "PASSWORD" in key for key in env)
    volumes = deployment.job_variables["volumes"]
    assert volumes == [f"{stack.env['MLTOY_SETTINGS_VOLUME']}:/run/mltoy:ro"]
