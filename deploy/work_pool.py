"""The Docker work pool's base job template: what a deployment or a run may set.

Whoever holds the Prefect API's auth string (every flow container does) can create a
run with job variables, and Prefect's default Docker template passes nearly all of them
to the engine: `volumes` (any named volume, e.g. PostgreSQL's data), `command`,
`privileged`, `network_mode`, `container_create_kwargs` (user, capabilities, ...).
This template exposes three variables and fixes the rest:

- `image`: a tag of the bundle's repository (MLTOY_IMAGE's), nothing else;
- `env`: environment variables (strings) for the flow container;
- `mem_limit`: one of a few sizes up to MLTOY_FLOW_MEMORY_MAX.

Any other variable is refused by the API itself (`additionalProperties: false`: 422,
naming it) when a deployment or a run sets it. The pool fixes: the network, the
read-only remote-settings volume, a non-root user, a read-only root filesystem with
tmpfs and a scratch volume on /tmp (where the run clones its commit), no capabilities,
no new privileges, CPU, memory and process limits, log rotation, auto-removal.

The API holder can rewrite this template too (it is one API call), so the Docker socket
proxy checks every container the worker creates against the same settings
(docker/socket-proxy/container_policy.lua): this template gives clear errors early,
the proxy is the enforcement. Both read their values from the MLTOY_* environment
(compose.yaml, `x-flow-containers`).

`python -m deploy.work_pool` prints the template (deploy/ensure-pool.sh applies it).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Sizes a deployment or run may pick for `mem_limit`, in Docker's notation.
MEMORY_SIZES = ("256m", "512m", "1g", "2g", "4g", "8g", "16g", "32g")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_bytes(size: str) -> int:
    """Docker's memory notation ('512m', '2g', '1073741824') in bytes."""
    match = re.fullmatch(r"([0-9]+)([bkmg]?)", size.strip().lower())
    if not match:
        raise ValueError(f"{size!r} is not a size such as 512m or 2g")
    return int(match.group(1)) * _UNITS[match.group(2)]


class FlowMemorySettings(BaseSettings):
    """A flow run's memory, whatever runs it: a default and a maximum (Docker's notation);
    a deployment or run may pick any of MEMORY_SIZES up to the maximum."""

    flow_memory: str = "1g"
    flow_memory_max: str = "2g"

    @field_validator("flow_memory", "flow_memory_max")
    @classmethod
    def _is_a_size(cls, value: str) -> str:
        size_bytes(value)
        return value

    def memory_sizes(self) -> list[str]:
        limit = size_bytes(self.flow_memory_max)
        return [size for size in MEMORY_SIZES if size_bytes(size) <= limit]


class FlowContainerSettings(FlowMemorySettings):
    """What every flow-run container is; read from the environment (MLTOY_*)."""

    model_config = SettingsConfigDict(env_prefix="MLTOY_", extra="ignore")

    image: str = Field(pattern=r"^[a-z0-9][a-z0-9._/:-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    network: str
    settings_volume: str
    # uid:gid, both numeric and not 0: a name could mean root in another image.
    flow_user: str = Field("1000:1000", pattern=r"^[1-9][0-9]*:[1-9][0-9]*$")
    # Writable in a read-only container: /tmp on a per-container scratch volume (the run
    # clones its commit there and works in the clone: disk, not memory; removed with the
    # container), tmpfs where tools keep caches and state (DVC in /var/tmp, home).
    flow_scratch: str = "/tmp"
    flow_tmpfs: str = "/var/tmp,/home/mltoy"
    flow_cpus: float = Field(1.0, gt=0, le=64)
    flow_pids_max: int = Field(512, gt=0, le=65536)
    image_pull_policy: str = Field("Never", pattern="^(Never|IfNotPresent|Always)$")

    @property
    def repository(self) -> str:
        return self.image.rsplit(":", 1)[0]

    def memory_choices(self) -> list[str]:
        return self.memory_sizes()


SETTINGS_MOUNT = "/run/mltoy"


def container_kwargs(settings: FlowContainerSettings) -> dict[str, Any]:
    """docker-py `containers.create` arguments the pool fixes for every flow run."""
    tmpfs = {}
    for path in settings.flow_tmpfs.split(","):
        # The home directory belongs to the flow's user; scratch dirs are sticky (1777).
        home = path.startswith("/home/")
        owner = "uid={},gid={}".format(*settings.flow_user.split(":")) if home else ""
        tmpfs[path] = ",".join(filter(None, ["rw", "nosuid", "nodev", "size=256m", owner]))
    return {
        "user": settings.flow_user,
        "read_only": True,
        "tmpfs": tmpfs,
        # An anonymous volume (no source) starts with the image's content at that path
        # (/tmp: empty, mode 1777) and is deleted with the container (auto_remove).
        "mounts": [{"Type": "volume", "Target": settings.flow_scratch}],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": settings.flow_pids_max,
        "nano_cpus": int(settings.flow_cpus * 1e9),
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
        "init": True,
    }


def base_job_template(settings: FlowContainerSettings) -> dict[str, Any]:
    """The work pool's base job template (see the module's docstring)."""
    choices = settings.memory_choices()
    default_memory = (
        settings.flow_memory if settings.flow_memory in choices else (choices or ["?"])[-1]
    )
    if default_memory not in choices:
        raise ValueError(
            f"MLTOY_FLOW_MEMORY={settings.flow_memory} must be one of {choices} "
            f"(sizes up to MLTOY_FLOW_MEMORY_MAX={settings.flow_memory_max})"
        )
    tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
    return {
        "job_configuration": {
            "image": "{{ image }}",
            "env": "{{ env }}",
            "mem_limit": "{{ mem_limit }}",
            "memswap_limit": "{{ mem_limit }}",  # no swap on top of the limit
            # Fixed by the pool: not variables, so nothing a deployment or run sends
            # reaches them.
            "command": None,  # the worker's own: prefect flow-run execute
            "name": None,  # the flow run's name
            "labels": {},
            "registry_credentials": None,
            "image_pull_policy": settings.image_pull_policy,
            "networks": [settings.network],
            "network_mode": None,
            "auto_remove": True,
            "volumes": [f"{settings.settings_volume}:{SETTINGS_MOUNT}:ro"],
            "stream_output": True,
            "privileged": False,
            "container_create_kwargs": container_kwargs(settings),
        },
        "variables": pool_variables(
            image_description=f"A tag of {settings.repository} (built locally).",
            image_pattern=f"^{re.escape(settings.repository)}:{tag}$",
            image_default=settings.image,
            memory=("mem_limit", "Memory (no swap) of the flow-run container."),
            memory_choices=choices,
            memory_default=default_memory,
        ),
    }


def pool_variables(
    image_description: str,
    image_pattern: str,
    image_default: str,
    memory: tuple[str, str],
    memory_choices: list[str],
    memory_default: str,
) -> dict[str, Any]:
    """The only job variables a deployment or run may set, each pool's: the image (of the
    bundle's repository), env, and the memory (named and sized as the pool's worker
    calls it); `additionalProperties: false`, so the API refuses any other (422)."""
    memory_name, memory_description = memory
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "env", memory_name],
        "properties": {
            "image": {
                "title": "Image",
                "description": image_description,
                "type": "string",
                "pattern": image_pattern,
                "default": image_default,
            },
            "env": {
                "title": "Environment Variables",
                "description": "Environment variables of the flow-run container.",
                "type": "object",
                "additionalProperties": {"type": "string"},
                "default": {},
            },
            memory_name: {
                "title": "Memory Limit",
                "description": memory_description,
                "type": "string",
                "enum": memory_choices,
                "default": memory_default,
            },
        },
    }


def print_template(template: dict[str, Any]) -> int:
    json.dump(template, sys.stdout, indent=2)
    print()
    return 0


def main() -> int:
    return print_template(base_job_template(FlowContainerSettings()))


if __name__ == "__main__":
    sys.exit(main())
