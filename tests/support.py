"""Test support shared across layers: the repo root, throw-away project copies, ports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import REPO_ROOT
from harness.stack import free_port
from harness.workspace import PROJECT_FILES, checkout_copy, make_project

__all__ = [
    "PROJECT_FILES",
    "REPO_ROOT",
    "checkout_copy",
    "free_port",
    "make_project",
    "run_in_repo",
    "validate_job_variables",
    "use_unreachable_s3_remote",
]


def use_unreachable_s3_remote(project: Path) -> str:
    """Make the project's default remote an S3 store nobody answers for; return its
    endpoint. As in a container: remote 'storage', bucket mltoy, prefix dvc."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("remote", "add", "--local", "--default", "storage", "s3://mltoy/dvc"),
        ("remote", "modify", "--local", "storage", "endpointurl", endpoint),
        ("remote", "modify", "--local", "storage", "access_key_id", "nobody"),
        ("remote", "modify", "--local", "storage", "secret_access_key", "nothing"),
    ):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, check=True)
    return endpoint


def run_in_repo(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """One of the repo's own commands (a script, `python -m ...`, `docker compose`) run from
    the repo root, its output captured as text; `env` replaces the environment."""
    return subprocess.run(
        list(argv),
        cwd=REPO_ROOT,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def validate_job_variables(template: dict, job_variables: dict) -> None:
    """What the Prefect server runs on a run's job variables (api/validation.py): the
    pool's defaults, overlaid with the run's variables, against the pool's schema."""
    from prefect.utilities.schema_tools import validate

    properties = template["variables"]["properties"]
    defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    validate(
        defaults | job_variables,
        template["variables"],
        raise_on_error=True,
        preprocess=True,
        ignore_required=False,
        allow_none_with_default=True,
    )
