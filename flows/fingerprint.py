"""Content fingerprints of stage inputs: what option B's cache keys are made of.

Hashes are MD5 of file bytes, the same as DVC 3 uses, so an object stored by option B
has the name DVC would give it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from flows.dvc_graph import ParamRef, Stage

_CHUNK = 1 << 20


class MissingInputError(FileNotFoundError):
    """A stage input that should exist does not (raw data not pulled, say)."""


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_path(project_dir: Path, relpath: str) -> dict[str, str]:
    """{file relpath: md5} for a file, or for every file under a directory."""
    path = project_dir / relpath
    if path.is_file():
        return {relpath: md5_file(path)}
    if path.is_dir():
        return {
            child.relative_to(project_dir).as_posix(): md5_file(child)
            for child in sorted(path.rglob("*"))
            if child.is_file()
        }
    raise MissingInputError(f"{relpath}: stage input not found in {project_dir}")


def hash_paths(project_dir: Path, relpaths: Iterable[str]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for relpath in relpaths:
        hashes.update(hash_path(project_dir, relpath))
    return hashes


def param_values(project_dir: Path, refs: Iterable[ParamRef]) -> dict[str, Any]:
    """The values of the tracked params, keyed 'file:key'; a missing key is an error."""
    documents: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for ref in refs:
        if ref.file not in documents:
            documents[ref.file] = yaml.safe_load((project_dir / ref.file).read_text()) or {}
        value = documents[ref.file]
        for part in ref.key.split(".") if ref.key else []:
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(f"{ref.file}: tracked parameter '{ref.key}' is missing")
            value = value[part]
        values[f"{ref.file}:{ref.key or '*'}"] = value
    return values


def stage_key(
    stage: Stage,
    external_deps: Mapping[str, str],
    upstream_outs: Mapping[str, str],
    params: Mapping[str, Any],
    store: str,
) -> str:
    """One key for everything that decides a stage's outputs, as DVC's stage lock does."""
    payload = {
        "stage": stage.name,
        "cmd": stage.cmd,
        "wdir": stage.wdir,
        "outs": list(stage.outs),
        "deps": dict(sorted({**external_deps, **upstream_outs}.items())),
        "params": params,
        "store": store,
    }
    encoded = json.dumps(payload, sort_keys=True, default=str).encode()
    return f"{stage.name}-{hashlib.sha256(encoded).hexdigest()}"
