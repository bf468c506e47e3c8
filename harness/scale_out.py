"""Workers on several Docker engines, driven as a user does (docs/scale-out.md): a stack
with the registry (`RegistryStack`: compose.registry.yaml, `make registry-push`), and a
second engine on this machine standing in for another host (`SecondEngine`,
docker/engine-standin) that a worker joins with `make worker-join`. Shared by the
scale-out test and the benchmark.

The second engine shares the network namespace of the stack's registry container, so
that the registry is 127.0.0.1:REGISTRY_PORT for both engines (one image name
everywhere, no TLS on a loopback registry) and its containers reach the stack's
services. It starts empty: no image, no volume, no network of the stack.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.polling import poll
from harness import make_in_checkout
from harness.stack import Stack, free_port

# What dockerd needs in a container, short of --privileged (these machines cannot grant
# every capability: CAP_SYS_RESOURCE is not in the host's bounding set).
ENGINE_PRIVILEGES = (
    *("--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"),
    *("--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"),
    *("--security-opt", "systempaths=unconfined", "--cgroupns", "host"),
)


LABEL = "io.mltoy.second-engine"


def remove_second_engines(label: str) -> None:
    """Those an aborted earlier session left (before its stack's leftovers: they share a
    container's network)."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}={label}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for container in listed.stdout.split():
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True)


@dataclass
class SecondEngine:
    container: str  # the engine's own container on this machine's engine
    socket_dir: Path  # where its socket is, on this machine

    @property
    def host(self) -> str:
        """Its address for `docker -H` / DOCKER_HOST / make worker-join's WORKER_HOST."""
        return f"unix://{self.socket_dir / 'docker.sock'}"

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=300)

    @classmethod
    def start(
        cls, image: str, beside: str, directory: Path, label: str, timeout: float = 120
    ) -> SecondEngine:
        """Start it in the network namespace of container `beside`; wait until it answers.
        `label` (io.mltoy.second-engine=LABEL) finds it again: `remove_second_engines`."""
        directory.mkdir(parents=True, exist_ok=True)
        name = f"mltoy-engine2-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            [
                *("docker", "run", "-d", "--name", name, *ENGINE_PRIVILEGES),
                *("--network", f"container:{beside}", "-v", f"{directory}:/run/engine"),
                *("--label", f"{LABEL}={label}", image),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        engine = cls(name, directory)

        def answers() -> bool | None:
            try:
                return engine.client().ping() or None
            except Exception:  # noqa: BLE001 - not up yet, whatever the error
                return None

        try:
            poll(answers, timeout, "the second Docker engine", every=0.5)
        except TimeoutError:
            raise RuntimeError(f"second engine did not start:\n{engine.logs()}") from None
        return engine

    def logs(self) -> str:
        said = subprocess.run(["docker", "logs", self.container], capture_output=True, text=True)
        return (said.stdout + said.stderr)[-5000:]

    def stop(self) -> None:
        """Remove it with everything it ran and stored (its data root is an anonymous volume)."""
        subprocess.run(["docker", "rm", "-f", "-v", self.container], capture_output=True)


@dataclass
class RegistryStack(Stack):
    """A stack with compose.registry.yaml and its images named in the registry (tagged
    from the prepared ones, as `make up` would build them); engines it started go with
    it at `down`."""

    images: dict[str, str] = field(default_factory=dict)  # setting -> registry name
    engines: list[SecondEngine] = field(default_factory=list)

    @classmethod
    def with_registry(
        cls, prepared: dict[str, str], directory: Path, project: str, **overrides: str
    ) -> RegistryStack:
        import docker

        registry = f"127.0.0.1:{free_port()}"
        images = {name: f"{registry}/{prepared[name]}" for name in ("MLTOY_IMAGE", "PROXY_IMAGE")}
        for name, image in images.items():
            docker.from_env().images.get(prepared[name]).tag(image)
        files = [name for name in prepared["COMPOSE_FILES"].split(":") if "mlflow" not in name]
        stack = cls.clone(
            prepared,
            directory,
            project,
            COMPOSE_FILE=":".join([*files, "compose.registry.yaml"]),
            REGISTRY_PORT=registry.rsplit(":", 1)[1],
            REGISTRY_IMAGE=prepared["REGISTRY_IMAGE"],
            **images,
            **overrides,
        )
        stack.images = images
        return stack

    def make(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A make target in the clone, with the stack's settings (as `make up` got them)
        and this interpreter's venv (no venv of its own in the clone)."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PREFECT_", "COMPOSE_", "MLTOY_", "DOCKER_"))
        }
        return subprocess.run(
            make_in_checkout(*args),
            cwd=self.project_dir,
            env={**inherited, **self.settings, **env},
            capture_output=True,
            text=True,
            timeout=900,
        )

    def _made(self, *args: str, **env: str) -> float:
        """Seconds a make target took; it must succeed."""
        start = time.perf_counter()
        result = self.make(*args, **env)
        if result.returncode != 0:
            said = result.stdout[-2000:] + result.stderr[-3000:]
            raise RuntimeError(f"make {args[0]} failed ({result.returncode}):\n{said}")
        return time.perf_counter() - start

    def push(self) -> float:
        """`make registry-push` of the images as they are (MLTOY_BUILD=0): seconds."""
        return self._made("registry-push", MLTOY_BUILD="0")

    def add_engine(self, image: str, directory: Path) -> SecondEngine:
        """A second engine beside the registry (started; no worker yet)."""
        registry = self.compose("ps", "-q", "registry").stdout.strip()
        engine = SecondEngine.start(image, registry, directory, label=self.project)
        self.engines.append(engine)
        return engine

    def join(self, engine: SecondEngine) -> float:
        """`make worker-join` onto `engine`: seconds (pulls included)."""
        return self._made("worker-join", WORKER_HOST=engine.host)

    def dump_logs(self, path: Path) -> str:
        said = super().dump_logs(path)
        for engine in self.engines:
            with path.open("a") as out:
                out.write(f"\n==== second engine {engine.container}\n{engine.logs()}\n")
                for container in engine.client().containers.list(all=True):
                    out.write(f"\n==== {container.name} (on it)\n")
                    out.write(container.logs(tail=300).decode(errors="replace"))
        return said

    def down(self) -> None:
        for engine in self.engines:  # first: it lives in the registry's network namespace
            engine.stop()
        self.engines.clear()
        super().down()
        for image in self.images.values():
            subprocess.run(["docker", "rmi", image], capture_output=True)
