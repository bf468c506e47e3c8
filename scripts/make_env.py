#!/usr/bin/env python3
"""`make env`: write the stack's .env, so nobody types a secret.

- every required secret, random (Python's `secrets`); the file is made with mode 600;
- DOCKER_GID, the group of the Docker socket (the socket proxy needs it);
- the developer's and the flows' Git credentials for the stack's Git server;
- MLflow's database and admin passwords, used once compose.mlflow.yaml is added (so MLflow
  is on with one setting, COMPOSE_FILE, and never has a typed password either), and the
  registry's (compose.registry.yaml) likewise;
- where the registry's images cannot be had (no `docker pull`), the stand-in settings:
  a local Debian base (scripts/make-base-image.sh) and compose.standin.yaml;
- any setting of .env.example already set in the environment (e.g. PREFECT_PORT=4300),
  as given: an explicit value always wins.

It never overwrites an existing file. Standard library only: it runs before the venv.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / ".env.example"
LOCAL_BASE = "mltoy/debian-python:bookworm"


def compose_default(name: str) -> str:
    """compose.yaml's default of a variable (`${NAME:-default}`): image pins live there."""
    found = re.search(rf"\$\{{{name}:-([^}}]+)\}}", (ROOT / "compose.yaml").read_text())
    if not found:
        raise SystemExit(f"make-env: error: compose.yaml gives {name} no default")
    return found.group(1)


PUBLIC_BASE = compose_default("BASE_IMAGE")
# The images compose.yaml pulls by default; the stand-ins replace them (compose.standin.yaml).
REGISTRY_IMAGES = (compose_default("S3_IMAGE"), compose_default("POSTGRES_IMAGE"))
STANDIN_FILES = "compose.yaml:compose.standin.yaml"
# Settings read from the environment besides those in .env.example.
EXTRA_KEYS = ("COMPOSE_PROJECT_NAME",)
# Off unless given, but written: compose refuses to start a service whose secret comes from
# a variable that is not set at all (`secrets: notify-url: environment:`), empty is fine.
OFF_UNLESS_GIVEN = {"MLTOY_NOTIFY_URL": ""}


def example_keys(example: Path = EXAMPLE) -> list[str]:
    """Every setting .env.example names, set or commented out."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
    return list(dict.fromkeys(pattern.findall(example.read_text())))


def secrets_and_identities(docker_gid: int) -> dict[str, str]:
    def token() -> str:  # letters, digits, '-' and '_': safe in URLs and .env files
        return secrets.token_urlsafe(24)

    return {
        "S3_ROOT_USER": f"admin-{secrets.token_hex(4)}",
        "S3_ROOT_PASSWORD": token(),
        "POSTGRES_PASSWORD": token(),
        "PREFECT_AUTH_STRING": f"admin:{token()}",
        "DOCKER_GID": str(docker_gid),
        "GIT_USER": "developer",
        "GIT_PASSWORD": token(),
        "GIT_FLOW_PASSWORD": token(),
        "MLFLOW_DB_PASSWORD": token(),
        "MLFLOW_ADMIN_PASSWORD": token(),
        "REGISTRY_PASSWORD": token(),
    }


def docker_gid() -> int:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    socket = Path(host.removeprefix("unix://")) if host.startswith("unix://") else None
    if socket is None or not socket.exists():
        raise SystemExit(
            f"make-env: error: no Docker socket at {host}: start Docker (as root on Debian: "
            "scripts/install-docker.sh), or set DOCKER_GID yourself"
        )
    return socket.stat().st_gid


def image_available(image: str) -> bool:
    """Present locally, or its manifest can be read from its registry (no download)."""
    for args in (["image", "inspect", image], ["manifest", "inspect", image]):
        try:
            result = subprocess.run(["docker", *args], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            return True
    return False


def registry_settings(available=image_available) -> dict[str, str]:
    """Stand-in settings for what cannot be pulled; nothing when everything can."""
    found: dict[str, str] = {}
    if not available(PUBLIC_BASE):
        found["BASE_IMAGE"] = LOCAL_BASE
    if not all(available(image) for image in REGISTRY_IMAGES):
        found["COMPOSE_FILE"] = STANDIN_FILES
    return found


def render(values: dict[str, str]) -> str:
    lines = [
        "# Written by `make env` (scripts/make_env.py): random secrets, never committed.",
        "# Every setting is described in .env.example; edit freely, it is never overwritten.",
    ]
    lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def build(environ: dict[str, str], available=image_available) -> dict[str, str]:
    """The settings to write: given ones (environment) over generated and detected ones."""
    keys = [*example_keys(), *EXTRA_KEYS]
    given = {key: environ[key] for key in keys if environ.get(key)}
    gid = int(given["DOCKER_GID"]) if "DOCKER_GID" in given else docker_gid()
    values = {**secrets_and_identities(gid), **OFF_UNLESS_GIVEN}
    if not {"BASE_IMAGE", "COMPOSE_FILE"} & given.keys():
        values.update(registry_settings(available))
    values.update(given)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/make_env.py", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=ROOT / ".env")
    args = parser.parse_args(argv)
    if args.path.exists():
        print(f"make-env: {args.path} exists: left as is (delete it to generate a new one)")
        return 0
    values = build(dict(os.environ))
    fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render(values))
    shown = ", ".join(k for k in values if k in ("BASE_IMAGE", "COMPOSE_FILE"))
    print(
        f"make-env: wrote {args.path} (mode 600): random secrets, DOCKER_GID, Git credentials"
        + (f"; stand-ins for images the registry does not give: {shown}" if shown else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
