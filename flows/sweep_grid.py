"""A sweep's trials: DVC's `-S` grid expanded and each trial's params checked up front.

The grammar is DVC's own, through DVC's functions: `dvc exp run -S` groups the overrides
by params file (`dvc.utils.cli_parse.to_path_overrides`), expands a sweep
(`train.C=0.1,1`, `choice(...)`, `range(...)`) into the grid's combinations
(`dvc.utils.hydra.get_hydra_sweeps`, Hydra's basic sweeper) and applies one combination
to the params file (`dvc.utils.hydra.apply_overrides`). tests/unit/flows/test_sweep_grid.py
pins their behaviour, so a DVC upgrade that changes it fails there.

A grid that cannot be read fails the whole sweep (SweepError). A combination that cannot
be applied (an unknown key) or whose params `mltoy` refuses (mltoy.params) is an invalid
trial with a one-line reason: it never starts, and the other trials go on.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flows.workspace import flatten
from mltoy.errors import MltoyInputError
from mltoy.params import parse_params

PARAMS_FILE = "params.yaml"
# What a Quick run of the sweep deployment tries: 2 x 2 trials, seconds each.
DEFAULT_GRID = ("train.C=0.1,1", "split.seed=1,2")
MODES = ("max", "min")


class SweepError(MltoyInputError):
    """The sweep's own parameters are wrong (the grid, the option, metric or mode)."""


@dataclass(frozen=True)
class Trial:
    number: int  # 1-based, in DVC's expansion order
    overrides: tuple[str, ...]  # this combination in `-S` form: ("train.C=0.1", ...)
    params: dict[str, Any] | None  # the params it changes, nested; None when invalid
    error: str | None = None  # why it is invalid, in one line: "train.C = -1: must be ..."

    @property
    def label(self) -> str:
        return " ".join(self.overrides) or "(no overrides)"

    @property
    def swept(self) -> dict[str, Any]:
        """{"train.C": 0.1, ...}: each override's key and its value as DVC parsed it."""
        from dvc.utils.hydra import to_hydra_overrides

        return {o.key_or_group: o.value() for o in to_hydra_overrides(list(self.overrides))}


def one_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def combinations(overrides: Sequence[str]) -> list[tuple[str, ...]]:
    """DVC's expansion of `-S` overrides into one override list per trial."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps

    if not overrides:
        return [()]
    by_file = to_path_overrides(overrides)
    others = sorted(set(by_file) - {PARAMS_FILE})
    if others:
        raise SweepError(f"overrides of {', '.join(others)}: a sweep sets {PARAMS_FILE} only")
    try:
        sweeps = get_hydra_sweeps(by_file)
    except Exception as exc:  # Hydra's grammar errors, DVC's refusal of glob sweeps
        raise SweepError(f"overrides {list(overrides)}: {one_line(exc)}") from None
    return [tuple(sweep[PARAMS_FILE]) for sweep in sweeps]


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def apply(params_file: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The params `dvc exp run -S` would write: DVC applies `overrides` to a copy."""
    from dvc.utils.hydra import apply_overrides

    with tempfile.TemporaryDirectory(prefix="mltoy-sweep-") as tmp:
        copy = Path(tmp) / PARAMS_FILE
        shutil.copyfile(params_file, copy)
        try:
            apply_overrides(copy, list(overrides))
        except Exception as exc:  # DVC wraps Hydra's reason ("Could not override ...")
            raise SweepError(one_line(exc.__cause__ or exc)) from None
        return yaml.safe_load(copy.read_text()) or {}


def plan(project: Path, overrides: Sequence[str]) -> list[Trial]:
    """Every trial of the grid, each validated as `mltoy` validates params.yaml."""
    params_file = project / PARAMS_FILE
    base = flatten(yaml.safe_load(params_file.read_text()) or {})
    trials = []
    for number, combination in enumerate(combinations(overrides), start=1):
        source = f"trial {number}"
        try:
            document = apply(params_file, combination)
            parse_params(document, source=source)
        except MltoyInputError as exc:
            error = one_line(str(exc)).removeprefix(f"{source}: ")
            trials.append(Trial(number, combination, None, error))
            continue
        changed = {k: v for k, v in flatten(document).items() if base.get(k, object()) != v}
        trials.append(Trial(number, combination, nested(changed)))
    return trials


def _score(row: Mapping[str, Any], metric: str) -> float | None:
    value = row.get("metrics", {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def rank(rows: Iterable[Mapping[str, Any]], metric: str, mode: str) -> list[Mapping[str, Any]]:
    """Completed trials with the metric first, best first (ties: the earlier trial); then
    the rest (failed, still running) in trial order."""
    if mode not in MODES:
        raise SweepError(f"mode = {mode!r}: must be one of {', '.join(MODES)}")
    sign = -1.0 if mode == "max" else 1.0
    scored, rest = [], []
    for row in rows:
        score = _score(row, metric)
        (scored if score is not None and row.get("state") == "Completed" else rest).append(row)
    scored.sort(key=lambda r: (sign * _score(r, metric), r["trial"]))  # type: ignore[operator]
    rest.sort(key=lambda r: r["trial"])
    return [*scored, *rest]


def best(rows: Iterable[Mapping[str, Any]], metric: str, mode: str) -> Mapping[str, Any] | None:
    ranked = rank(rows, metric, mode)
    if ranked and ranked[0].get("state") == "Completed" and _score(ranked[0], metric) is not None:
        return ranked[0]
    return None
