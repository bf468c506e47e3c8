"""Security defaults of the running stack: auth, exposure, users, secrets."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolUpdate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.exceptions import PrefectHTTPStatusError
from prefect_docker.worker import DockerWorker

from tests.e2e.stack import PROJECT, Stack, containers_labelled, poll

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
    """(Every route, websockets, CSRF and the failed-login limit: test_web.py.)"""
    pool = f"/work_pools/{stack.env['MLTOY_WORK_POOL']}"
    with httpx.Client(base_url=stack.api_url, timeout=10) as http:
        assert http.get(pool).status_code == 401
        assert http.get(pool, auth=("admin", "wrong")).status_code == 401
        user, password = stack.env["PREFECT_AUTH_STRING"].split(":", 1)
        assert http.get(pool, auth=(user, password)).status_code == 200
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
        ("gateway", "127.0.0.1", 4200),  # the UI/API, behind the failed-login limit
        ("git", "127.0.0.1", 8080),  # pushes need the developer's credentials
        ("s3", "127.0.0.1", 9000),  # the developer key: the DVC bucket only
    ]
    if mlflow_on(stack):
        expected.append(("mlflow", "127.0.0.1", 5000))  # its UI and API, behind basic auth
    assert sorted(published) == sorted(expected)


def test_containers_run_as_non_root(stack: Stack):
    services = ["prefect-server", "worker", "postgres", "docker-proxy", "git", "gateway"]
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
    pool = stack.client.read_work_pool(stack.env["MLTOY_WORK_POOL"])
    volumes = pool.base_job_template["job_configuration"]["volumes"]
    assert not any("developer" in v for v in volumes)  # flow containers get the pool's only


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
        # The failure notifications' URL token (the suite sets MLTOY_NOTIFY_URL).
        *(
            [stack.env["MLTOY_NOTIFY_URL"].rsplit("/", 1)[1]]
            if stack.env.get("MLTOY_NOTIFY_URL")
            else []
        ),
    ]


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
    pool = stack.client.read_work_pool(stack.env["MLTOY_WORK_POOL"])
    volumes = pool.base_job_template["job_configuration"]["volumes"]
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
    postgres = _inspect(stack, "postgres")
    refused = [
        # Another container by name or short id: its environment holds a password.
        ("GET", f"/v1.41/containers/{postgres['Name'].lstrip('/')}/json", None),
        ("GET", f"/v1.41/containers/{postgres['Id'][:12]}/json", None),
        ("POST", f"/v1.41/containers/{postgres['Name'].lstrip('/')}/stop", None),
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


# Issue 18's reproduction and its neighbours: job variables that would reach the engine.
def _escapes(stack: Stack) -> dict[str, tuple[dict, str]]:
    """{case: (job variables, the setting the refusal must name)}."""
    name = PROJECT  # compose's volumes are PROJECT_NAME
    return {
        "postgres data volume, uid 999, a command": (
            {
                "volumes": [f"{name}_postgres-data:/steal:ro"],
                "container_create_kwargs": {"user": "999"},
                "command": "sh -c 'ls -la /steal'",
            },
            "",  # several: the first one refused is named
        ),
        # refused as a bind or as a declared volume path, whichever is checked first
        "another named volume": ({"volumes": [f"{name}_s3-data:/steal"]}, "/steal"),
        "uid 999": ({"container_create_kwargs": {"user": "999"}}, "User"),
        "a command": ({"command": "sh -c 'exit 0'"}, "Cmd"),
        "a root-default image": ({"image": stack.env["BASE_IMAGE"]}, "Image"),
        "privileged": ({"privileged": True}, "Privileged"),
        "the host's root file system": ({"volumes": ["/:/host:ro"]}, "/host"),
    }


ESCAPES = [
    "postgres data volume, uid 999, a command",
    "another named volume",
    "uid 999",
    "a command",
    "a root-default image",
    "privileged",
    "the host's root file system",
]


@pytest.mark.parametrize("case", ESCAPES)
def test_the_api_refuses_job_variables_the_pool_does_not_expose(stack: Stack, case: str):
    """The pool's template exposes image (the bundle's repository), env and mem_limit;
    a run asking for anything else is refused when it is created, naming it."""
    job_variables, _ = _escapes(stack)[case]
    deployment = stack.deployment_id("b")
    before = len(stack.client.read_flow_runs())
    with pytest.raises(PrefectHTTPStatusError) as info:
        stack.client.create_flow_run_from_deployment(deployment, job_variables=job_variables)
    assert info.value.response.status_code == 422
    detail = info.value.response.json()["detail"]
    for variable in job_variables:
        if variable != "image":
            assert f"'{variable}'" in detail, detail
    if "image" in job_variables:
        assert job_variables["image"] in detail, detail
    assert len(stack.client.read_flow_runs()) == before  # no run was created


def test_a_deployment_cannot_carry_the_variables_a_run_may_not(stack: Stack):
    """Per deployment as per run. Creating a deployment with them is refused (422, naming
    each). Prefect does not check a PATCH of a deployment's job variables alone, so the
    deployment takes them; but every run of it is then refused when it is created, since
    the deployment's variables are checked with the run's: none reaches a container."""
    job_variables, _ = _escapes(stack)["postgres data volume, uid 999, a command"]
    b = stack.client.read_deployment(stack.deployment_id("b"))

    def refused(info: pytest.ExceptionInfo[PrefectHTTPStatusError]) -> None:
        assert info.value.response.status_code == 422
        detail = info.value.response.json()["detail"]
        assert all(f"'{variable}'" in detail for variable in job_variables), detail

    with pytest.raises(PrefectHTTPStatusError) as info:
        stack.client.create_deployment(
            flow_id=b.flow_id,
            name="e2e-escape",
            work_pool_name=stack.env["MLTOY_WORK_POOL"],
            job_variables=job_variables,
        )
    refused(info)

    def made_by_hand() -> set:  # the scheduler may add runs meanwhile
        runs = stack.client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[b.id]))
        )
        return {run.id for run in runs if not run.auto_scheduled}

    before = made_by_hand()
    stack.client.update_deployment(
        b.id, DeploymentUpdate(job_variables={**b.job_variables, **job_variables})
    )
    try:
        assert stack.client.read_deployment(b.id).job_variables["volumes"]  # taken as is
        with pytest.raises(PrefectHTTPStatusError) as info:
            stack.client.create_flow_run_from_deployment(b.id)
        refused(info)
        assert made_by_hand() == before  # no run was created
    finally:
        stack.client.update_deployment(b.id, DeploymentUpdate(job_variables=b.job_variables))
    assert stack.run_deployment("b").state.is_completed()  # and its own variables run


@pytest.fixture
def rewritten_pool(stack: Stack) -> Iterator[dict]:
    """The pool's template replaced by Prefect's default Docker one, as anyone holding
    the API's auth string can do (every flow container holds it); put back after.

    Runs then carry the bundle's legitimate settings, each with one escape added, so the
    socket proxy's refusal is the only thing between them and the engine."""
    name = stack.env["MLTOY_WORK_POOL"]
    original = stack.client.read_work_pool(name).base_job_template
    stack.client.update_work_pool(
        name, WorkPoolUpdate(base_job_template=DockerWorker.get_default_base_job_template())
    )
    fixed = original["job_configuration"]
    legitimate = {
        key: fixed[key] for key in ("networks", "volumes", "auto_remove", "image_pull_policy")
    } | {
        "container_create_kwargs": fixed["container_create_kwargs"],
        "mem_limit": "1g",
        "memswap_limit": "1g",
    }
    try:
        yield legitimate
    finally:
        stack.client.update_work_pool(name, WorkPoolUpdate(base_job_template=original))


def test_a_rewritten_pool_template_still_gets_no_container(stack: Stack, rewritten_pool):
    """Each escape goes through the real worker to the socket proxy, which refuses it
    naming the setting: the run ends Crashed and no container was created."""
    escapes = _escapes(stack)
    for case in ESCAPES:
        job_variables, named = escapes[case]
        variables = dict(rewritten_pool)
        for key, value in job_variables.items():
            if key == "container_create_kwargs":
                value = {**variables[key], **value}
            elif key == "volumes":
                value = [*variables[key], *value]
            variables[key] = value
        run = stack.run_deployment("b", timeout=180, job_variables=variables)
        message = run.state.message or ""
        assert run.state.type.value == "CRASHED", (case, run.state)
        assert "docker-proxy refused the container" in message, (case, message)
        assert named in message, (case, message)
        assert run.infrastructure_pid is None, case
        assert containers_labelled(f"prefect.io/flow-run-id={run.id}") == [], case
    # The pool's own template is back: a normal run of the same deployment completes.


def test_the_normal_runs_still_run_after_the_refusals(stack: Stack):
    assert stack.run_deployment("b").state.is_completed()


# ---- every service hardened (issue 12.3) ----

READ_ONLY = {
    "prefect-server",
    "gateway",
    "worker",
    "docker-proxy",
    "postgres",
    "remote-init",
    "git",
}
# With compose.mlflow.yaml (the suite's stack has it): the server and its one-shots.
MLFLOW_READ_ONLY = {"mlflow", "mlflow-init", "mlflow-users"}


def _service_containers(stack: Stack) -> dict[str, dict]:
    ids = stack.compose("ps", "-aq").stdout.split()
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in json.loads(out.stdout)}


def test_every_service_runs_with_least_privilege_and_limits(stack: Stack):
    containers = _service_containers(stack)
    assert {"prefect-server", "gateway", "postgres", "s3", "worker", "docker-proxy"} <= set(
        containers
    )
    read_only = READ_ONLY | (MLFLOW_READ_ONLY if "mlflow" in containers else set())
    assert read_only <= set(containers), read_only - set(containers)
    for service, container in containers.items():
        host = container["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], service
        assert host["SecurityOpt"] == ["no-new-privileges:true"], service
        assert not host["Privileged"], service
        assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0, service
        log = host["LogConfig"]
        assert log["Type"] == "json-file" and log["Config"]["max-size"] == "10m", service
        if service in read_only or (service == "s3" and "standin" in stack.env["S3_IMAGE"]):
            assert host["ReadonlyRootfs"] is True, service
    # PostgreSQL is on the back-end network only, with the server.
    assert set(containers["postgres"]["NetworkSettings"]["Networks"]) == {f"{PROJECT}_backend"}
    assert f"{PROJECT}_backend" in containers["prefect-server"]["NetworkSettings"]["Networks"]


def test_flow_containers_cannot_reach_the_database(stack: Stack):
    script = """
import json, socket
try:
    socket.create_connection(("postgres", 5432), timeout=5).close()
    print(json.dumps("reached"))
except OSError as error:
    print(json.dumps(type(error).__name__))
"""
    assert stack.in_network(script) == "gaierror"


def test_flow_containers_run_hardened(stack: Stack):
    """A running flow container, as the pool's template and the proxy make it."""
    run_id = stack.trigger("b")
    config = stack.inspect_running(run_id)
    host = config["HostConfig"]
    assert config["Config"]["User"] == "1000:1000"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Memory"] == host["MemorySwap"] == 1024**3
    assert host["NanoCpus"] == 10**9 and host["PidsLimit"] == 512
    assert host["LogConfig"]["Config"]["max-size"] == "10m"
    assert host["Binds"] == [f"{stack.env['MLTOY_SETTINGS_VOLUME']}:/run/mltoy:ro"]
    assert host["NetworkMode"] == stack.env["MLTOY_NETWORK"]
    assert set(host["Tmpfs"]) == {"/var/tmp", "/home/mltoy"}
    assert stack.wait_final(run_id).state.is_completed()
    # Its scratch volume (the work dir) goes with it (the engine removes it after the
    # container, which the worker sees exit first).
    (scratch,) = [m["Name"] for m in config["Mounts"] if m["Destination"] == "/tmp"]

    def removed() -> bool | None:
        volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True)
        return scratch not in volumes.stdout.split() or None

    poll(removed, 60, f"the flow container's scratch volume {scratch} to be removed")
