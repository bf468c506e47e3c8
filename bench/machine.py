"""What the numbers were measured on: hardware, OS, Docker, versions, and the load."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

PACKAGES = ("prefect", "prefect-docker", "dvc", "dvc-s3", "scikit-learn", "pandas", "moto")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(own_project: str, docker: bool = True) -> dict[str, Any]:
    """The machine; `docker=False` (sections that need no Docker) asks the engine nothing."""
    found = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.freedesktop_os_release()["PRETTY_NAME"],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": None,
        "compose": None,
        "docker_storage": "not asked (no section needing Docker ran)",
        "versions": {package: _version(package) for package in PACKAGES},
        "loadavg_at_start": os.getloadavg(),
        "other_containers_at_start": [],
    }
    if docker:
        found.update(_docker(own_project))
    return found


def _docker(own_project: str) -> dict[str, Any]:
    import docker

    engine = docker.from_env()
    info = engine.info()
    compose = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True
    )
    others = [
        c["Names"][0].lstrip("/")
        for c in engine.api.containers()  # running ones, as `docker ps`
        if c["Labels"].get("com.docker.compose.project") != own_project
    ]
    return {
        "docker": engine.version()["Version"],
        "compose": compose.stdout.strip() or None,
        "docker_storage": f"{info['Driver']}, cgroup v{info['CgroupVersion']}",
        "other_containers_at_start": others,
    }
