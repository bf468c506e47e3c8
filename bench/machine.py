"""What the numbers were measured on: hardware, OS, Docker, versions, and the load."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
    except OSError:
        pass
    return None


def _docker(*args: str) -> str | None:
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def other_containers(own_project: str) -> list[str]:
    """Running containers that are not the benchmark's (noise on a shared machine)."""
    out = _docker("ps", "--format", '{{.Names}} {{.Label "com.docker.compose.project"}}') or ""
    return [
        line.split()[0]
        for line in out.splitlines()
        if line.split()[1:2] != [own_project] and "mltoy-bench" not in line
    ]


def describe(own_project: str = "mltoy-bench") -> dict[str, Any]:
    mem_kb = int((_first("/proc/meminfo", "MemTotal") or "0 kB").split()[0])
    os_name = (_first("/etc/os-release", "PRETTY_NAME") or platform.platform()).strip('"')
    versions = {}
    for package in ("prefect", "prefect-docker", "dvc", "dvc-s3", "scikit-learn", "pandas", "moto"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": _docker("version", "--format", "{{.Server.Version}}"),
        "compose": _docker("compose", "version", "--short"),
        "docker_storage": _docker("info", "--format", "{{.Driver}}, cgroup v{{.CgroupVersion}}"),
        "versions": versions,
        "loadavg_at_start": os.getloadavg(),
        "other_containers_at_start": other_containers(own_project),
    }
