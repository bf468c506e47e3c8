"""The pipeline as DVC reads it, so that option B runs what `dvc repro` would run.

DVC itself reads the project: `vars`, `foreach` and `matrix` stages and `${...}` are
resolved, params files may have any name and format DVC reads, and DVC checks the graph
(cycles, overlapping outputs) with its own messages. The stages are those `dvc repro`
plans with no target: the stages of `dvc.yaml` and every stage they depend on, in its
order. This module turns them into plain frozen data that tasks can be handed.

The DVC API used here, pinned by requirements.lock (dvc==3.67.1) and checked against
the installed DVC by tests/unit/flows/test_dvc_pipeline.py:
- `dvc.repo.Repo(path)` as a context manager, `.index.graph` (a networkx
  DiGraph whose edges go from a stage to the stages it depends on), `.stage.load_one`;
- `dvc.repo.reproduce`: `get_active_graph`, `plan_repro` (what `dvc repro` calls to
  order the stages it collected: with no target, those of `dvc.yaml`; the index's own,
  rather than `collect_stages`, which would read dvc.yaml a second time);
- a stage's `.cmd` (None for a `.dvc` file; a string or a list), `.name`, `.path`,
  `.path_in_repo`, `.wdir`, `.deps`, `.outs`, `.frozen`, `.always_changed`,
  `.is_callback`;
- a dependency's or output's `.fs_path`, `.protocol`; an output's `.is_metric`,
  `.persist` and `.hash_info.value` (the md5 a `.dvc` file records);
- `ParamsDependency`: `.params` (the keys; none: the whole file) and, read when a stage's
  cache key is made (flows/fingerprint.py), `dvc.dependency.param.read_param_file`;
- `dvc.exceptions.DvcException`: whatever is wrong with the definition.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_FILE = "dvc.yaml"


class PipelineDefinitionError(ValueError):
    """The pipeline cannot be read, or asks for something option B does not do."""


@dataclass(frozen=True)
class ParamRef:
    """The tracked params of one params file: these keys (dotted), or all of it."""

    file: str  # project-relative
    keys: tuple[str, ...] = ()  # () = every key of the file


@dataclass(frozen=True)
class Stage:
    name: str  # as `dvc repro` names it: 'train', 'train@lr', 'sub/dvc.yaml:train'
    cmd: str  # a list of commands is joined with ' && ' (DVC stops at the first failure)
    wdir: str  # project-relative, '.' for the project itself
    deps: tuple[str, ...]  # project-relative paths of files and directories
    params: tuple[ParamRef, ...]
    outs: tuple[str, ...]  # outs, metrics and plots: everything the stage writes
    metrics: tuple[str, ...]
    persist: tuple[str, ...] = ()  # outputs DVC keeps in place while the stage runs
    always_changed: bool = False  # never a cache hit: DVC always reruns it (or a callback)


@dataclass(frozen=True)
class Pipeline:
    stages: Mapping[str, Stage]  # in the order `dvc repro` runs them
    upstream: Mapping[str, frozenset[str]]
    # {path: md5} of the `.dvc`-tracked files (raw data) the stages read
    tracked_sources: Mapping[str, str] = field(default_factory=dict)

    def order(self) -> list[str]:
        return list(self.stages)

    def external_deps(self, name: str) -> tuple[str, ...]:
        """Deps of a stage that no stage produces: raw data, source files."""
        written = [out for stage in self.stages.values() for out in stage.outs]
        return tuple(
            dep for dep in self.stages[name].deps if not any(_overlaps(out, dep) for out in written)
        )

    def producer(self, path: str) -> str | None:
        """The stage that writes `path` (an output, or a file inside an output directory)."""
        return next(
            (name for name, s in self.stages.items() if any(_overlaps(o, path) for o in s.outs)),
            None,
        )

    @property
    def metrics_files(self) -> tuple[str, ...]:
        return tuple(m for stage in self.stages.values() for m in stage.metrics)


def load_pipeline(project_dir: str | Path) -> Pipeline:
    """What `dvc repro` (no target) would run in `project_dir` (the directory of the
    dvc.yaml: the DVC repository's root or a directory in it)."""
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo
    from dvc.repo.reproduce import get_active_graph, plan_repro

    project = Path(project_dir).resolve()
    if not (project / PROJECT_FILE).is_file():
        raise PipelineDefinitionError(f"{project / PROJECT_FILE}: not found")
    try:
        with Repo(str(project)) as repo:
            graph = repo.index.graph
            stages = repo.index.stages
            files = {stage.path for stage in stages}
            ours = {path for path in files if Path(path).resolve() == project / PROJECT_FILE}
            targets = [stage for stage in stages if stage.path in ours]
            plan = plan_repro(get_active_graph(graph), targets)
            return _pipeline(project, graph, plan)
    except NotDvcRepoError as exc:
        raise PipelineDefinitionError(f"{project}: not a DVC repository ({exc})") from exc
    except DvcException as exc:
        raise PipelineDefinitionError(f"{project}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """DVC's message, with the schema errors its console would print under it."""
    errors = getattr(getattr(exc, "exc", None), "errors", None) or []  # voluptuous's
    details = [
        f"{error.error_message} in {' -> '.join(str(part) for part in error.path)}"
        for error in errors
    ]
    return "; ".join([str(exc), *details])


def tracked_file(project_dir: str | Path, dvc_file: str | Path) -> tuple[str, str]:
    """(project-relative path, md5) of the file a `.dvc` file tracks, read by DVC."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    project = Path(project_dir).resolve()
    try:
        with Repo(str(project)) as repo:
            return _tracked(project, repo.stage.load_one(str(project / dvc_file)))
    except DvcException as exc:
        raise PipelineDefinitionError(f"{project / dvc_file}: {_reason(exc)}") from exc


def _pipeline(project: Path, graph: Any, plan: Iterable[Any]) -> Pipeline:
    """Commands become stages; `.dvc` files in the plan (those the stages read) sources."""
    commands = [stage for stage in plan if stage.cmd is not None]
    sources = [stage for stage in plan if stage.cmd is None]
    return Pipeline(
        stages={_name(project, stage): _stage(project, stage) for stage in commands},
        upstream={
            _name(project, stage): frozenset(
                _name(project, dep) for dep in graph.successors(stage) if dep.cmd is not None
            )
            for stage in commands
        },
        tracked_sources=dict(sorted(_tracked(project, source) for source in sources)),
    )


def _name(project: Path, stage: Any) -> str:
    """As `dvc repro` run in the project names a stage (DVC's `addressing`, which is
    relative to the process's working directory: ours may be another)."""
    dvc_file = Path(os.path.relpath(stage.path, project)).as_posix()
    return str(stage.name) if dvc_file == PROJECT_FILE else f"{dvc_file}:{stage.name}"


def _stage(project: Path, stage: Any) -> Stage:
    from dvc.dependency import ParamsDependency

    if not getattr(stage, "name", None):
        raise PipelineDefinitionError(f"{stage.path_in_repo}: a command in a .dvc file")
    name = _name(project, stage)
    if stage.frozen:
        raise PipelineDefinitionError(
            f"stage {name} is frozen: option B cannot leave a stage unchecked as DVC does "
            "(unfreeze it, or run option A)"
        )
    params: list[ParamRef] = []
    deps: list[str] = []
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            params.append(ParamRef(_relpath(project, dep, name), tuple(dep.params)))
        else:
            deps.append(_relpath(project, dep, name))
    outs = tuple(_relpath(project, out, name) for out in stage.outs)
    cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
    return Stage(
        name=name,
        cmd=cmd.strip(),
        wdir=Path(os.path.relpath(stage.wdir, project)).as_posix(),
        deps=tuple(deps),
        params=tuple(params),
        outs=outs,
        metrics=tuple(_relpath(project, out, name) for out in stage.outs if out.is_metric),
        persist=tuple(_relpath(project, out, name) for out in stage.outs if out.persist),
        always_changed=bool(stage.always_changed or stage.is_callback),
    )


def _tracked(project: Path, source: Any) -> tuple[str, str]:
    """(path, md5) of the file a `.dvc` file tracks."""
    where = source.path_in_repo
    if source.deps or len(source.outs) != 1:
        raise PipelineDefinitionError(f"{where}: only `dvc add`-ed files are supported")
    (out,) = source.outs
    md5 = out.hash_info.value if out.hash_info else None
    if not md5:
        raise PipelineDefinitionError(f"{where}: no md5 recorded (run `dvc commit`)")
    if str(md5).endswith(".dir"):
        raise PipelineDefinitionError(f"{where}: tracked directories are not supported")
    return _relpath(project, out, where), str(md5)


def _relpath(project: Path, entry: Any, where: str) -> str:
    """A dep's or output's path relative to the project, POSIX style."""
    if entry.protocol != "local":
        raise PipelineDefinitionError(f"{where}: {entry} is not a local path")
    relpath = Path(os.path.relpath(entry.fs_path, project)).as_posix()
    if relpath == ".." or relpath.startswith("../"):
        raise PipelineDefinitionError(f"{where}: {entry} is outside the project")
    return relpath


def _overlaps(out: str, path: str) -> bool:
    return out == path or path.startswith(out + "/") or out.startswith(path + "/")
