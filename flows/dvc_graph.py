"""Read `dvc.yaml` into a stage graph, so option B schedules exactly what DVC would.

Only the parts of DVC's schema that decide *what runs when* are read: cmd, wdir, deps,
params, outs, metrics and plots. Edges come from paths: a stage depends on every stage
that outputs one of its deps (or a directory containing it, or a file inside it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

DEFAULT_PARAMS_FILE = "params.yaml"


class PipelineDefinitionError(ValueError):
    """`dvc.yaml` cannot be turned into a graph (bad shape, cycle, duplicate output)."""


@dataclass(frozen=True)
class ParamRef:
    """One tracked parameter: a dotted key (or a whole section) in a params file."""

    file: str
    key: str | None  # None: every key of the file


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    wdir: str
    deps: tuple[str, ...]
    params: tuple[ParamRef, ...]
    outs: tuple[str, ...]  # outs, metrics and plots: everything the stage writes
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Pipeline:
    stages: Mapping[str, Stage]
    upstream: Mapping[str, frozenset[str]]

    def order(self) -> list[str]:
        """Stages in a valid execution order (ties broken by dvc.yaml order)."""
        position = {name: i for i, name in enumerate(self.stages)}
        sorter = TopologicalSorter(self.upstream)
        sorter.prepare()
        ordered: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=position.__getitem__)
            ordered.extend(ready)
            sorter.done(*ready)
        return ordered

    def external_deps(self, name: str) -> tuple[str, ...]:
        """Deps of a stage that no stage produces: raw data, source files."""
        return tuple(
            dep
            for dep in self.stages[name].deps
            if not any(_overlaps(out, dep) for s in self.stages.values() for out in s.outs)
        )

    def tracked_sources(self, project_dir: str | Path) -> dict[str, str]:
        """{path: md5} of the external deps DVC tracks with a `.dvc` file (raw data)."""
        sources: dict[str, str] = {}
        for dep in sorted({d for name in self.stages for d in self.external_deps(name)}):
            dvc_file = Path(project_dir) / f"{dep}.dvc"
            if dvc_file.is_file():
                sources[dep] = _tracked_md5(dvc_file, dep)
        return sources

    def producer(self, path: str) -> str | None:
        """The stage that writes `path` (an output, or a file inside an output directory)."""
        return next(
            (name for name, s in self.stages.items() if any(_overlaps(o, path) for o in s.outs)),
            None,
        )

    @property
    def metrics_files(self) -> tuple[str, ...]:
        return tuple(m for stage in self.stages.values() for m in stage.metrics)


def _tracked_md5(dvc_file: Path, dep: str) -> str:
    try:
        (out,) = yaml.safe_load(dvc_file.read_text())["outs"]
        md5 = str(out["md5"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise PipelineDefinitionError(f"{dvc_file}: expected one output with an md5") from exc
    if md5.endswith(".dir"):
        raise PipelineDefinitionError(f"{dvc_file}: tracked directories are not supported")
    return md5


def load_pipeline(project_dir: str | Path, filename: str = "dvc.yaml") -> Pipeline:
    path = Path(project_dir) / filename
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PipelineDefinitionError(f"{path}: not found") from exc
    except yaml.YAMLError as exc:
        raise PipelineDefinitionError(f"{path}: invalid YAML: {exc}") from exc
    return parse_pipeline(document, source=str(path))


def parse_pipeline(document: Any, source: str = "dvc.yaml") -> Pipeline:
    if not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
        raise PipelineDefinitionError(f"{source}: expected a mapping with a 'stages' mapping")
    stages = {name: _parse_stage(name, spec, source) for name, spec in document["stages"].items()}
    return Pipeline(stages=stages, upstream=_edges(stages, source))


def _parse_stage(name: str, spec: Any, source: str) -> Stage:
    where = f"{source}: stage '{name}'"
    if not isinstance(spec, dict):
        raise PipelineDefinitionError(f"{where}: expected a mapping")
    if "foreach" in spec or "matrix" in spec:
        raise PipelineDefinitionError(f"{where}: foreach/matrix stages are not supported")
    cmd = spec.get("cmd")
    if isinstance(cmd, list):
        cmd = " && ".join(cmd)
    if not isinstance(cmd, str) or not cmd.strip():
        raise PipelineDefinitionError(f"{where}: 'cmd' must be a non-empty string")
    wdir = str(spec.get("wdir", "."))
    outs = tuple(
        _normalise(_entry_path(entry, where), wdir)
        for section in ("outs", "metrics", "plots")
        for entry in spec.get(section) or []
    )
    return Stage(
        name=name,
        cmd=cmd.strip(),
        wdir=wdir,
        deps=tuple(_normalise(_entry_path(d, where), wdir) for d in spec.get("deps") or []),
        params=tuple(_parse_params(spec.get("params") or [], wdir, where)),
        outs=outs,
        metrics=tuple(_normalise(_entry_path(m, where), wdir) for m in spec.get("metrics") or []),
    )


def _entry_path(entry: Any, where: str) -> str:
    """Deps and outs are a path or a one-key mapping {path: options}."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and len(entry) == 1:
        return str(next(iter(entry)))
    raise PipelineDefinitionError(f"{where}: cannot read path entry {entry!r}")


def _parse_params(entries: list[Any], wdir: str, where: str) -> list[ParamRef]:
    default_file = _normalise(DEFAULT_PARAMS_FILE, wdir)
    refs: list[ParamRef] = []
    for entry in entries:
        if isinstance(entry, str):
            refs.append(ParamRef(default_file, entry))
        elif isinstance(entry, dict):
            for file, keys in entry.items():
                file = _normalise(str(file), wdir)
                if not keys:
                    refs.append(ParamRef(file, None))
                else:
                    refs.extend(ParamRef(file, str(key)) for key in keys)
        else:
            raise PipelineDefinitionError(f"{where}: cannot read params entry {entry!r}")
    return refs


def _normalise(path: str, wdir: str) -> str:
    """Project-relative POSIX path without './' or trailing slash."""
    joined = PurePosixPath(wdir) / path if wdir not in ("", ".") else PurePosixPath(path)
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if not parts:
                raise PipelineDefinitionError(f"path {path!r} escapes the project")
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _overlaps(out: str, path: str) -> bool:
    return out == path or path.startswith(out + "/") or out.startswith(path + "/")


def _edges(stages: Mapping[str, Stage], source: str) -> dict[str, frozenset[str]]:
    producers: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.outs:
            for other_out, owner in producers.items():
                if _overlaps(out, other_out):
                    raise PipelineDefinitionError(
                        f"{source}: output '{out}' of stage '{stage.name}' overlaps "
                        f"output '{other_out}' of stage '{owner}'"
                    )
            producers[out] = stage.name
    upstream = {
        stage.name: frozenset(
            owner
            for dep in stage.deps
            for out, owner in producers.items()
            if _overlaps(out, dep) and owner != stage.name
        )
        for stage in stages.values()
    }
    try:
        tuple(TopologicalSorter(upstream).static_order())
    except CycleError as exc:
        raise PipelineDefinitionError(f"{source}: stages form a cycle: {exc.args[1]}") from exc
    return upstream
