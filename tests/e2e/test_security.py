"""Security defaults of the running stack: auth, exposure, users, secrets."""

from __future__ import annotations

import json
import re
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


def mlflow_on(stack: Stack) -> bool:
    return "compose.mlflow.yaml" in stack.env["COMPOSE_FILE"]


def test_only_the_ui_git_and_s3_ports_are_published_on_loopback(stack: Stack):
    published = []
    for line in stack.compose("ps", "--format", "json").stdout.splitlines():
        service = json.loads(line)
        for port in service.get("Publishers") or []:
            if port.get("PublishedPort"):
                published.append((service["Service"], port["URL"], port["TargetPort"]))
    expected = [
        ("git", "127.0.0.1", 8080),  # pushes need the developer's credentials
        ("prefect-server", "127.0.0.1", 4200),
        ("s3", "127.0.0.1", 9000),  # the developer key: the DVC bucket only
    ]
    if mlflow_on(stack):
        expected.append(("mlflow", "127.0.0.1", 5000))  # its UI and API, behind basic auth
    assert sorted(published) == sorted(expected)


def test_containers_run_as_non_root(stack: Stack):
    services = ["prefect-server", "worker", "postgres", "docker-proxy", "git"]
    for service in services + (["mlflow"] if mlflow_on(stack) else []):
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


DEVELOPER_KEY_SCRIPT = """
import configparser, json
creds = configparser.ConfigParser()
creds.read("/run/mltoy-developer/aws/credentials")
print(json.dumps(dict(creds["default"])))
"""


@pytest.fixture(scope="module")
def developer_key(stack: Stack) -> dict[str, str]:
    return stack.in_network(DEVELOPER_KEY_SCRIPT)


def test_the_developer_key_is_neither_the_root_nor_the_flows_key(
    stack: Stack, developer_key: dict[str, str], flow_key_attempts: dict[str, Any]
):
    """Made by remote-init like the flows' key, limited to the bucket too (same policy),
    kept in a volume flow containers do not mount."""
    assert developer_key["aws_access_key_id"] != stack.env["S3_ROOT_USER"]
    assert developer_key["aws_secret_access_key"] not in (
        stack.env["S3_ROOT_PASSWORD"],
        flow_key_attempts["flow_secret"],
    )
    deployment = stack.client.read_deployment(stack.deployment_id("a"))
    assert not any("developer" in v for v in deployment.job_variables["volumes"])


@pytest.fixture
def secrets(
    stack: Stack, flow_key_attempts: dict[str, Any], developer_key: dict[str, str]
) -> list[str]:
    """The stack's passwords and the flows' and developer's secret keys."""
    prefect_password = stack.env["PREFECT_AUTH_STRING"].split(":", 1)[1]
    mlflow = [
        stack.env[k] for k in ("MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD") if k in stack.env
    ]
    return [
        stack.env["S3_ROOT_PASSWORD"],
        stack.env["POSTGRES_PASSWORD"],
        prefect_password,
        stack.env["GIT_PASSWORD"],
        stack.env["GIT_FLOW_PASSWORD"],
        flow_key_attempts["flow_secret"],
        developer_key["aws_secret_access_key"],
        *(mlflow if mlflow_on(stack) else []),
    ]


def test_no_secret_in_any_image_layer(stack: Stack, secrets: list[str]):
    images = [
        stack.env["MLTOY_IMAGE"],
        stack.env["S3_IMAGE"],
        stack.env["POSTGRES_IMAGE"],
        stack.env["PROXY_IMAGE"],
        stack.env["GIT_IMAGE"],
        *([stack.env["MLFLOW_IMAGE"]] if mlflow_on(stack) else []),
    ]
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


def _inspect(stack: Stack, service: str) -> dict:
    container = stack.compose("ps", "-q", service).stdout.strip()
    out = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)[0]


def test_only_the_proxy_holds_the_docker_socket(stack: Stack):
    """The worker reaches the engine over the network, through the proxy."""
    worker = _inspect(stack, "worker")
    assert not any("docker.sock" in m["Source"] for m in worker["Mounts"]), worker["Mounts"]
    assert not worker["HostConfig"]["GroupAdd"]
    assert "DOCKER_HOST=tcp://docker-proxy:2375" in worker["Config"]["Env"]
    exists = stack.compose(
        "exec", "-T", "worker", "test", "-e", "/var/run/docker.sock", check=False
    )
    assert exists.returncode == 1
    proxy = _inspect(stack, "docker-proxy")
    (socket,) = [m for m in proxy["Mounts"] if m["Destination"] == "/var/run/docker.sock"]
    assert socket["RW"] is False
    assert proxy["HostConfig"]["ReadonlyRootfs"] is True


# Run in the worker's container: the status the proxy answers to each call.
PROXY_SCRIPT = """
import json, urllib.error, urllib.request
calls = json.loads({calls!r})
out = []
for method, path, body in calls:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request("http://docker-proxy:2375" + path, data=data,
        method=method, headers={{"Content-Type": "application/json"}})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            out.append(response.status)
    except urllib.error.HTTPError as error:
        out.append(error.code)
print(json.dumps(out))
"""


def _statuses(stack: Stack, calls: list[tuple[str, str, object]]) -> list[tuple[str, int]]:
    """[(call, status)] in the order of `calls`."""
    script = PROXY_SCRIPT.format(calls=json.dumps(calls))
    result = stack.compose("exec", "-T", "worker", "python", "-c", script)
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    return [
        (f"{method} {path}", code) for (method, path, _), code in zip(calls, codes, strict=True)
    ]


def test_docker_proxy_allows_what_the_worker_needs_and_refuses_the_rest(stack: Stack):
    worker = _inspect(stack, "worker")["Id"]
    image = stack.env["MLTOY_IMAGE"]
    allowed = [
        ("GET", "/_ping", None),
        ("GET", "/version", None),
        ("GET", f"/v1.41/containers/{worker}/json", None),
        ("GET", f"/v1.41/images/{image}/json", None),
    ]
    statuses = _statuses(stack, allowed)
    assert [code for _, code in statuses] == [200] * len(allowed), statuses

    settings = f"{stack.env['MLTOY_SETTINGS_VOLUME']}:/run/mltoy:ro"
    refused = [
        # Endpoints the worker never calls.
        ("POST", f"/v1.41/containers/{worker}/exec", {"Cmd": ["id"]}),
        ("POST", "/v1.41/build", None),
        ("POST", "/v1.41/images/create?fromImage=busybox&tag=latest", None),
        ("GET", "/v1.41/containers/json", None),
        ("GET", "/v1.41/secrets", None),
        ("GET", "/v1.41/volumes", None),
        ("POST", "/v1.41/plugins/pull?remote=x", None),
        ("POST", "/v1.41/swarm/init", {}),
        ("POST", f"/v1.41/containers/{worker}/kill", None),
        ("DELETE", f"/v1.41/containers/{worker}", None),
        # An allowed endpoint asking for the host: privileged, host root bind-mounted,
        # host PID namespace, root user.
        ("POST", "/v1.41/containers/create", {"Image": image, "HostConfig": {"Privileged": True}}),
        (
            "POST",
            "/v1.41/containers/create",
            {"Image": image, "HostConfig": {"Binds": [settings, "/:/host"]}},
        ),
        ("POST", "/v1.41/containers/create", {"Image": image, "HostConfig": {"PidMode": "host"}}),
        ("POST", "/v1.41/containers/create", {"Image": image, "User": "0"}),
        # A body on start: API < 1.24 would take a HostConfig there.
        ("POST", f"/v1.23/containers/{worker}/start", {"Privileged": True}),
    ]
    statuses = _statuses(stack, refused)
    assert [code for _, code in statuses] == [403] * len(refused), statuses
    # Refusals are logged where an operator looks.
    log = stack.compose("logs", "--no-color", "docker-proxy").stdout
    assert re.search(r" 403 .*\"POST /v1.41/build ", log)
    assert _inspect(stack, "worker")["State"]["Running"]  # the refused kill did nothing


def test_flow_containers_cannot_reach_the_docker_proxy(stack: Stack):
    """Flow containers join the stack's default network; the proxy is not on it: its name
    does not resolve there, and its address does not answer."""
    networks = _inspect(stack, "docker-proxy")["NetworkSettings"]["Networks"]
    (address,) = [net["IPAddress"] for net in networks.values()]
    script = f"""
import json, socket
out = []
for host in ("docker-proxy", "{address}"):
    try:
        socket.create_connection((host, 2375), timeout=5).close()
        out.append("reached")
    except OSError as error:
        out.append(type(error).__name__)
print(json.dumps(out))
"""
    name, ip = stack.in_network(script)
    assert name == "gaierror"
    assert ip != "reached"


def test_flow_runs_go_through_the_proxy(stack: Stack):
    """Flow containers are created and started through it (the runs of test_stack, or one
    of its own when run alone)."""
    if not stack.runs:
        assert stack.run_deployment("a").state.is_completed()
    log = stack.compose("logs", "--no-color", "docker-proxy").stdout
    assert re.search(r" 201 .*\"POST /v[0-9.]+/containers/create", log), log[-2000:]
    assert re.search(r" 204 .*\"POST /v[0-9.]+/containers/[0-9a-f]+/start", log)


@pytest.mark.parametrize(
    "job_variables",
    [{"privileged": True}, {"volumes": ["/:/host"]}],
    ids=["privileged", "host-root-bind-mount"],
)
def test_a_run_asking_for_the_host_gets_no_container(stack: Stack, job_variables: dict):
    """Whoever holds the API credentials can override a run's job variables; a run that
    asks for a privileged container or the host's root is refused by the proxy."""
    run = stack.run_deployment("b", timeout=120, job_variables=job_variables)
    assert run.state.type.value == "CRASHED", run.state
    assert "403" in (run.state.message or ""), run.state.message
    assert run.infrastructure_pid is None
