"""The project directory a flow works in, the params file DVC reads there, and the
lock that keeps two runs out of one project directory."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from prefect import get_run_logger

from mltoy.io import atomic_write_text
from mltoy.params import parse_params

PARAMS_FILE = "params.yaml"
PROJECT_DIR_ENV = "MLTOY_PROJECT_DIR"
LOCK_FILE = ".dvc/tmp/mltoy-run.lock"


class WorkspaceBusyError(RuntimeError):
    """Another run holds the project directory (a second `make run` in one checkout)."""

    bad_input = True  # waiting and retrying inside the run would not help it


@contextmanager
def exclusive(project: Path) -> Iterator[None]:
    """Hold the project directory for one run: params, stages, outputs, metrics.

    Two runs in one checkout would pair one run's params.yaml with the other's outputs
    (and DVC refuses two `dvc repro` at once mid-way). The second run fails at once,
    naming the first; the lock is the kernel's (flock), so a killed run leaves none.
    """
    path = project / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WorkspaceBusyError(
                f"{project}: another run is using this project directory ({holder}); "
                "wait for it to finish, or run in another checkout"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


def resolve_project(project_dir: str | None) -> Path:
    """The explicit dir, else $MLTOY_PROJECT_DIR, else the current dir; must hold dvc.yaml."""
    project = Path(project_dir or os.environ.get(PROJECT_DIR_ENV) or ".").resolve()
    if not (project / "dvc.yaml").is_file():
        raise FileNotFoundError(f"{project}: no dvc.yaml here; pass project_dir")
    return project


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"C": 1.0}} -> {"train.C": 1.0}: params as `dvc params diff`, `-S` and
    MLflow name them."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_params(
    project: Path,
    params_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> bool:
    """Validate the run's params, then make them the workspace's params.yaml.

    The run's params are `params_file` (or the workspace's params.yaml) with `overrides`
    merged in. Nothing is written unless all of them are valid, and nothing at all when
    they equal what is there. Returns whether params.yaml changed.
    """
    target = project / PARAMS_FILE
    source = Path(params_file) if params_file else target
    document = yaml.safe_load(source.read_text()) if source.is_file() else None
    if params_file and document is None:
        raise FileNotFoundError(f"{source}: params file not found or empty")
    merged = deep_merge(document or {}, overrides or {})
    text = yaml.safe_dump(merged, sort_keys=False)
    parse_params(merged, source=f"{source} + run parameters" if overrides else str(source))
    if source == target and not overrides:
        return False
    current = yaml.safe_load(target.read_text()) if target.is_file() else None
    if current == merged:
        return False
    atomic_write_text(target, text)
    get_run_logger().info("params.yaml updated for this run from %s", params_file or "overrides")
    return True
