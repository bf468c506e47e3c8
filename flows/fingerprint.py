"""Content fingerprints of stage inputs: what option B's cache keys are made of.

Files are hashed by DVC's own function (MD5 of the bytes in DVC 3), so an object stored
by option B has the name DVC would give it; params are read by DVC's own reader.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flows.dvc_pipeline import ParamRef, Stage


class MissingInputError(FileNotFoundError):
    """A stage input that should exist does not (raw data not pulled, say)."""


def md5_file(path: Path) -> str:
    """The MD5 DVC gives a file: the name of its object in DVC's cache and remote."""
    from dvc_data.hashfile.hash import file_md5

    return file_md5(str(path))


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
    """The values of the tracked params, keyed 'file:key', read as DVC reads them (YAML,
    JSON, TOML or Python, dotted keys); a missing key is an error, as in `dvc repro`."""
    from dvc.dependency.param import read_param_file
    from dvc.fs import localfs

    values: dict[str, Any] = {}
    for ref in refs:
        path = str(project_dir / ref.file)
        found = read_param_file(localfs, path, list(ref.keys) or None, flatten=True)
        missing = sorted(set(ref.keys) - found.keys())
        if missing:
            raise KeyError(f"{ref.file}: tracked parameter(s) {', '.join(missing)} missing")
        values.update({f"{ref.file}:{key}": value for key, value in found.items()})
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
