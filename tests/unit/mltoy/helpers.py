"""Builders shared by the mltoy unit tests: valid params, edits of them, file snapshots."""

import copy
from pathlib import Path
from typing import Any

import yaml

STAGES = ("prepare", "train", "evaluate")

GOOD_PARAMS: dict[str, Any] = {
    "split": {"test_size": 0.3, "seed": 42},
    "train": {"C": 1.0, "max_iter": 500, "seed": 42},
    "evaluate": {"average": "macro"},
}

MISSING = object()  # `edited` deletes the key instead of setting it


def edited(keys: tuple[str, ...], value: Any, base: dict[str, Any] = GOOD_PARAMS) -> dict[str, Any]:
    """A copy of `base` with the value at `keys` replaced (or deleted when MISSING)."""
    document = copy.deepcopy(base)
    *parents, last = keys
    section = document
    for key in parents:
        section = section[key]
    if value is MISSING:
        del section[last]
    else:
        section[last] = value
    return document


def write_params(path: Path, document: Any = GOOD_PARAMS) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes: equal snapshots mean nothing was touched."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def replace_line(path: Path, line: int, text: str) -> None:
    """Replace one line (1-based, the header is line 1) of a text file."""
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = text + "\n"
    path.write_text("".join(lines))
