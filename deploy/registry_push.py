"""`make registry-push`: the images a worker on another host needs, into the stack's
registry (compose.registry.yaml), with prefect-docker's own deployment steps.

The bundle's image (MLTOY_IMAGE: the worker's and every flow run's) is built with
`build_docker_image` (skipped with MLTOY_BUILD=0, when the images were built already)
and pushed with `push_docker_image`; the Docker socket proxy's (PROXY_IMAGE, built by
`make up`) is pushed. Both names must be in the registry (REGISTRY_PORT on 127.0.0.1).

Run on the stack's host, where the images are built: the deploy step, in a container,
has no Docker engine to build with by design (docs/security.md). The settings are the
stack's .env, the environment winning.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ROOT / ".env", extra="ignore")

    mltoy_image: str = "mltoy/bundle:0.1.0"
    proxy_image: str = "mltoy/socket-proxy:0.1.0"
    registry_port: int = 5000
    registry_user: str = "mltoy"
    registry_password: SecretStr
    base_image: str = "python:3.11-slim-bookworm"
    mltoy_build: bool = True

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    def check(self) -> None:
        for name, image in (("MLTOY_IMAGE", self.mltoy_image), ("PROXY_IMAGE", self.proxy_image)):
            if not image.startswith(f"{self.registry}/"):
                raise ValueError(
                    f"{name}={image} is not in the stack's registry: name it "
                    f"{self.registry}/{image.split('/', 1)[-1]} in .env (docs/scale-out.md)"
                )

    def credentials(self) -> dict[str, Any]:
        return {
            "registry_url": self.registry,
            "username": self.registry_user,
            "password": self.registry_password.get_secret_value(),
        }


def split(image: str) -> tuple[str, str]:
    repository, tag = image.rsplit(":", 1)
    return repository, tag


def main() -> int:
    from prefect_docker.deployments.steps import build_docker_image, push_docker_image

    try:
        settings = RegistrySettings()
        settings.check()
    except (ValidationError, ValueError) as error:
        print(f"registry-push: error: {error}", file=sys.stderr)
        return 2
    if settings.mltoy_build:
        repository, tag = split(settings.mltoy_image)
        lock = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()
        build_docker_image(
            image_name=repository,
            tag=tag,
            dockerfile="docker/Dockerfile",
            buildargs={"BASE_IMAGE": settings.base_image, "LOCK_SHA256": lock},
        )
    for image in (settings.mltoy_image, settings.proxy_image):
        repository, tag = split(image)
        push_docker_image(image_name=repository, tag=tag, credentials=settings.credentials())
        print(f"registry-push: {image} pushed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
