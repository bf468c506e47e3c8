"""A second Docker engine on this machine, standing in for another host
(docker/engine-standin): the scale-out test and benchmark put a worker on it with
`make worker-join`, as a user does on a real second host.

It shares the network namespace of the stack's registry container, so that the
registry is 127.0.0.1:REGISTRY_PORT for both engines (one image name everywhere, no
TLS on a loopback registry) and its containers reach the stack's services. It starts
empty: no image, no volume, no network of the stack.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.polling import poll

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
