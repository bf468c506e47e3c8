"""The project directory a flow works in, and the params file DVC reads there."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from prefect import get_run_logger

from mltoy.io import atomic_write_text
from mltoy.params import parse_params

PARAMS_FILE = "params.yaml"
PROJECT_DIR_ENV = "MLTOY_PROJECT_DIR"


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
