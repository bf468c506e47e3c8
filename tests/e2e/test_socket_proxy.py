"""The Docker socket proxy's container check, against a recording stand-in for the engine.

No stack: the proxy image runs alone with a fake Docker socket that answers every call it
gets and records it, so each refusal is shown to stop the request before any engine,
and the allowed body is the one the worker really sends (the pool's template through
prefect-docker and docker-py).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socketserver
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import docker
import httpx
import pytest
from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

from deploy.work_pool import FlowContainerSettings, base_job_template
from tests.e2e.stack import poll
from tests.support import free_port

NETWORK = "mltoy-net"
CONTAINER_ID = "c0ffee" * 10 + "c0de"  # 64 hex digits, as the engine's ids
SETTINGS_VOLUME = "mltoy-remote-settings"


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers like the engine (create 201, the rest 200) and records every request."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        super().__init__(path, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: FakeEngine

    def address_string(self) -> str:
        return "fake-engine"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append((self.command, self.path, self.rfile.read(length)))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(200, {"Version": "20.10.24", "ApiVersion": "1.41", "Id": CONTAINER_ID})

    def do_POST(self) -> None:
        self._answer(201, {"Id": CONTAINER_ID, "Warnings": []})


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeEngine]:
    path = tmp_path_factory.mktemp("engine") / "docker.sock"
    server = FakeEngine(str(path))
    os.chmod(path, 0o666)  # the proxy runs as its own non-root user
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def settings(prepared: dict[str, str]) -> FlowContainerSettings:
    return FlowContainerSettings(
        image=prepared["MLTOY_IMAGE"], network=NETWORK, settings_volume=SETTINGS_VOLUME
    )


def _start_proxy(
    prepared: dict[str, str], engine: FakeEngine, settings, **extra: str
) -> Iterator[str]:
    """The proxy image on the fake socket, with the policy's settings; its URL."""
    port = free_port()
    name = f"mltoy-proxy-test-{uuid.uuid4().hex[:8]}"
    env = {
        "MLTOY_IMAGE": settings.image,
        "MLTOY_NETWORK": NETWORK,
        "MLTOY_SETTINGS_VOLUME": SETTINGS_VOLUME,
        **extra,
    }
    subprocess.run(
        [
            *("docker", "run", "-d", "--rm", "--name", name, "--read-only", "--cap-drop", "ALL"),
            *("-p", f"127.0.0.1:{port}:2375"),
            *("-v", f"{engine.server_address}:/var/run/docker.sock"),
            *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
            prepared["PROXY_IMAGE"],
        ],
        check=True,
        capture_output=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool | None:
            try:
                return httpx.get(f"{url}/_ping", timeout=2).status_code == 200 or None
            except httpx.HTTPError:
                return None

        poll(ready, 60, "the socket proxy", every=0.5)
        yield url
    finally:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        print(logs.stdout[-5000:], logs.stderr[-5000:])
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def proxy(prepared: dict[str, str], engine: FakeEngine, settings) -> Iterator[str]:
    yield from _start_proxy(prepared, engine, settings)


@pytest.fixture(scope="module")
def pulling_proxy(prepared: dict[str, str], engine: FakeEngine, settings) -> Iterator[str]:
    """As compose.registry.yaml runs it: pulls allowed."""
    yield from _start_proxy(prepared, engine, settings, ALLOW_IMAGE_PULL="1")


def worker_container_settings(settings: FlowContainerSettings) -> dict[str, Any]:
    """What prefect-docker passes to docker-py for a run, from the pool's template."""
    config = asyncio.run(
        DockerWorkerJobConfiguration.from_template_and_values(
            base_job_template(settings), {"env": {"A": "1"}}, client=object()
        )
    )
    config.command = config.command or "prefect flow-run execute"
    config.name = "flow-run-name"
    # As prepare_for_flow_run does: the worker's own settings, the run's id.
    config.env = {
        "PREFECT_API_URL": "http://prefect-server:4200/api",
        **config.env,
        "PREFECT__FLOW_RUN_ID": str(uuid.uuid4()),
    }
    client = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41")  # unused
    return DockerWorker(work_pool_name="x")._build_container_settings(client, config)


@pytest.fixture(scope="module")
def allowed_body(proxy: str, engine: FakeEngine, settings) -> dict[str, Any]:
    """The worker's create call goes through, unchanged; its body is what the rest vary."""
    client = docker.DockerClient(base_url=proxy.replace("http", "tcp"), version="1.41")
    before = len(engine.requests)
    client.containers.create(**worker_container_settings(settings))
    creates = [r for r in engine.requests[before:] if r[1].startswith("/v1.41/containers/create")]
    assert len(creates) == 1, engine.requests[before:]
    return json.loads(creates[0][2])


def post(proxy: str, body: bytes | dict[str, Any], engine: FakeEngine) -> tuple[int, str, bool]:
    """(status, message, whether it reached the engine)."""
    before = len(engine.requests)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        f"{proxy}/v1.41/containers/create",
        content=data,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    message = response.json().get("message", "") if response.status_code == 403 else ""
    # (the proxy's own healthcheck pings the engine meanwhile)
    reached = any("/containers/create" in path for _, path, _ in engine.requests[before:])
    return response.status_code, message, reached


def test_the_workers_flow_container_is_allowed(allowed_body: dict[str, Any]):
    host = allowed_body["HostConfig"]
    assert allowed_body["User"] == "1000:1000"
    assert host["Binds"] == [f"{SETTINGS_VOLUME}:/run/mltoy:ro"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of body with path ("HostConfig.Binds") set to value (None: removed)."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value
    return body


BAD = "mltoy-e2e_postgres-data:/steal:ro"
CASES = {
    # issue 18's reproduction and its neighbours
    "postgres data volume": ("HostConfig.Binds", ["SETTINGS", BAD], "HostConfig.Binds[1]"),
    "settings volume writable": ("HostConfig.Binds", [f"{SETTINGS_VOLUME}:/run/mltoy:rw"], "Binds"),
    "host root": ("HostConfig.Binds", ["/:/host"], "HostConfig.Binds[0]"),
    "user 999": ("User", "999", "User"),
    "user root by name": ("User", "root", "User"),
    "user 0": ("User", "0:0", "User"),
    "group root": ("User", "1000:0", "User"),
    "no user": ("User", None, "user must be set"),
    "command": ("Cmd", ["sh", "-c", "exit 0"], "Cmd"),
    "entrypoint": ("Entrypoint", ["sh"], "Entrypoint"),
    "another image": ("Image", "debian:bookworm", "Image"),
    "image by digest": ("Image", "mltoy/bundle@sha256:" + "0" * 64, "Image"),
    "privileged": ("HostConfig.Privileged", True, "HostConfig.Privileged"),
    "added capability": ("HostConfig.CapAdd", ["SYS_ADMIN"], "HostConfig.CapAdd"),
    "capabilities kept": ("HostConfig.CapDrop", ["NET_RAW"], "HostConfig.CapDrop"),
    "seccomp off": ("HostConfig.SecurityOpt", ["seccomp=unconfined"], "SecurityOpt"),
    "no no-new-privileges": ("HostConfig.SecurityOpt", None, "securityopt must be set"),
    "writable root": ("HostConfig.ReadonlyRootfs", False, "ReadonlyRootfs"),
    "memory too high": ("HostConfig.Memory", 64 * 1024**3, "HostConfig.Memory"),
    "no memory limit": ("HostConfig.Memory", None, "memory must be set"),
    "swap unlimited": ("HostConfig.MemorySwap", -1, "HostConfig.MemorySwap"),
    "cpus too high": ("HostConfig.NanoCpus", 64 * 10**9, "HostConfig.NanoCpus"),
    "no pids limit": ("HostConfig.PidsLimit", -1, "HostConfig.PidsLimit"),
    "host network": ("HostConfig.NetworkMode", "host", "HostConfig.NetworkMode"),
    "another network": ("HostConfig.NetworkMode", "bridge", "HostConfig.NetworkMode"),
    "host pid": ("HostConfig.PidMode", "host", "HostConfig.PidMode"),
    "devices": ("HostConfig.Devices", [{"PathOnHost": "/dev/sda"}], "HostConfig.Devices"),
    "bind mount": (
        "HostConfig.Mounts",
        [{"Type": "bind", "Source": "/", "Target": "/host"}],
        "HostConfig.Mounts[0]",
    ),
    "named volume mount": (
        "HostConfig.Mounts",
        [{"Type": "volume", "Source": "mltoy-e2e_s3-data", "Target": "/tmp"}],
        "Source",
    ),
    "tmpfs on /etc": ("HostConfig.Tmpfs", {"/etc": "size=1m,nosuid,nodev"}, "Tmpfs./etc"),
    "tmpfs with suid": ("HostConfig.Tmpfs", {"/var/tmp": "size=1m,nodev"}, "Tmpfs./var/tmp"),
    "syslog driver": (
        "HostConfig.LogConfig",
        {"Type": "syslog", "Config": {"syslog-address": "udp://x:514"}},
        "LogConfig",
    ),
    "sysctls": ("HostConfig.Sysctls", {"kernel.shmmax": "1"}, "HostConfig.Sysctls"),
    "volumes from": ("HostConfig.VolumesFrom", ["mltoy-e2e-postgres-1"], "VolumesFrom"),
    "docker group": ("HostConfig.GroupAdd", ["105"], "HostConfig.GroupAdd"),
    "restart always": ("HostConfig.RestartPolicy", {"Name": "always"}, "RestartPolicy"),
    "published port": (
        "HostConfig.PortBindings",
        {"22/tcp": [{"HostPort": "2222"}]},
        "PortBindings",
    ),
    "other endpoint": (
        "NetworkingConfig",
        {"EndpointsConfig": {"bridge": {}}},
        "NetworkingConfig.EndpointsConfig.bridge",
    ),
    "host config missing": ("HostConfig", None, "hostconfig must be set"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_escape_is_refused_naming_the_setting(proxy, engine, allowed_body, case):
    path, value, named = CASES[case]
    if isinstance(value, list):
        value = [f"{SETTINGS_VOLUME}:/run/mltoy:ro" if v == "SETTINGS" else v for v in value]
    status, message, reached = post(proxy, _set(allowed_body, path, value), engine)
    assert (status, reached) == (403, False), (status, message)
    assert named in message, message


def _raw(body: dict[str, Any], old: str, new: str) -> bytes:
    text = json.dumps(body)
    assert old in text
    return text.replace(old, new, 1).encode()


def test_parsing_tricks_are_refused(proxy, engine, allowed_body):
    """What Go's JSON decoder (the engine's) would read differently from a naive check."""
    host = '"HostConfig": {'
    text = json.dumps(allowed_body)
    tricks = {
        # the engine matches keys case-insensitively
        "lower-case key": _raw(allowed_body, host, host + '"privileged": true, '),
        "upper-case key": _raw(allowed_body, host, host + '"PRIVILEGED": true, '),
        "two spellings of a key": _raw(allowed_body, host, host + '"binds": ["/:/host"], '),
        # a JSON escape spelling a key; the long s, which Go folds to "s"
        "escaped key": _raw(allowed_body, host, host + '"\\u0050rivileged": true, '),
        "non-ASCII key": _raw(allowed_body, host, host + '"\\u017fecurityOpt": ["x"], '),
        # a repeated key: the last one counts (for the engine too)
        "repeated HostConfig": (
            text[:-1]
            + ', "HostConfig": '
            + json.dumps({**allowed_body["HostConfig"], "Privileged": True})
            + "}"
        ).encode(),
        # without "HostConfig", the engine reads host settings at the top level
        "top-level host config": json.dumps(
            _set(_set(allowed_body, "HostConfig", None), "Privileged", True)
        ).encode(),
        "not JSON": b"{'Image': 'x'}",
        "a list": b"[]",
        "NaN": _raw(allowed_body, '"PidsLimit": 512', '"PidsLimit": NaN'),
        "number as text": _raw(allowed_body, '"PidsLimit": 512', '"PidsLimit": "512"'),
    }
    for name, body in tricks.items():
        status, message, reached = post(proxy, body, engine)
        assert (status, reached) == (403, False), (name, status, message)


def test_a_body_larger_than_the_buffer_is_refused(proxy, engine, allowed_body):
    big = _set(allowed_body, "Labels", {"x": "y" * 40_000})
    status, _, reached = post(proxy, big, engine)
    assert (status, reached) == (413, False)


def pull(proxy: str, engine: FakeEngine, query: dict[str, str]) -> tuple[int, bool]:
    """(status, whether it reached the engine) of a pull (POST /images/create)."""
    before = len(engine.requests)
    response = httpx.post(f"{proxy}/v1.41/images/create", params=query, timeout=10)
    reached = any("/images/create" in path for _, path, _ in engine.requests[before:])
    return response.status_code, reached


def test_pulls_are_refused_unless_allowed(proxy, engine, settings):
    assert pull(proxy, engine, {"fromImage": settings.repository, "tag": "0.1.0"}) == (403, False)


def test_with_pulls_allowed_only_the_bundles_repository_is_pulled(pulling_proxy, engine, settings):
    """A registry name has ':' and '/', which docker-py sends URL-encoded: the proxy
    compares the decoded name; any tag of it, nothing else, no import from a URL."""
    registry_settings = FlowContainerSettings(
        image=f"127.0.0.1:5000/{settings.image}", network=NETWORK, settings_volume=SETTINGS_VOLUME
    )
    assert registry_settings.repository != settings.repository
    client = docker.DockerClient(base_url=pulling_proxy.replace("http", "tcp"), version="1.41")
    before = len(engine.requests)
    client.api.pull(settings.repository, tag="another-tag")
    pulled = [path for _, path, _ in engine.requests[before:] if "/images/create" in path]
    assert len(pulled) == 1 and "another-tag" in pulled[0], engine.requests[before:]
    for query in (
        {"fromImage": "debian", "tag": "bookworm"},
        {"fromImage": registry_settings.repository, "tag": "0.1.0"},  # another registry's
        {"fromImage": f"{settings.repository}x", "tag": "0.1.0"},
        {"fromImage": settings.image},  # name:tag in one: not how docker-py asks
        {"fromImage": settings.repository, "fromSrc": "http://example.com/root.tar"},
        {"fromSrc": "-", "repo": settings.repository},
    ):
        assert pull(pulling_proxy, engine, query) == (403, False), query
