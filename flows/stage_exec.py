"""Running one dvc.yaml stage's command for option B, without losing its old outputs."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import get_run_logger

from flows.dvc_pipeline import Stage
from flows.shell import stream
from mltoy import cli as mltoy_cli

_MLTOY_CLI = ("-m", "mltoy.cli")


class StageCommandError(RuntimeError):
    """A stage's command failed or did not write the outputs dvc.yaml declares."""


def run_command(stage: Stage, project: Path) -> None:
    """mltoy stages run in-process (no new interpreter); anything else in a shell."""
    argv = shlex.split(stage.cmd)
    cwd = project / stage.wdir
    if len(argv) > 3 and Path(argv[0]).name.startswith("python") and tuple(argv[1:3]) == _MLTOY_CLI:
        mltoy_cli.run(argv[3:], cwd=cwd)
        return
    code, lines = stream(stage.cmd, cwd, get_run_logger().info)
    if code != 0:
        raise StageCommandError(
            f"stage {stage.name}: command exited with {code}: {lines[-1] if lines else ''}"
        )


@contextmanager
def outputs_set_aside(project: Path, outs: tuple[str, ...]) -> Iterator[None]:
    """Move old outputs away while a stage runs; put them back if it fails.

    A stage must write its outputs afresh (a stale one would hide a stage that no
    longer writes it), yet a failed run must not lose the last good ones.
    """
    aside = project / ".dvc" / "tmp" / "option-b-aside"
    moved: list[tuple[Path, Path]] = []
    for relpath in outs:
        source = project / relpath
        if source.exists():
            backup = aside / relpath
            backup.parent.mkdir(parents=True, exist_ok=True)
            if backup.exists():
                shutil.rmtree(backup) if backup.is_dir() else backup.unlink()
            source.rename(backup)
            moved.append((source, backup))
    try:
        yield
    except BaseException:
        for source, backup in moved:
            if source.exists():
                shutil.rmtree(source) if source.is_dir() else source.unlink()
            backup.rename(source)
        raise
    for _, backup in moved:
        shutil.rmtree(backup) if backup.is_dir() else backup.unlink()
