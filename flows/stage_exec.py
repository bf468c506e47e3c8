"""Running one dvc.yaml stage's command for option B, without losing its old outputs."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import get_run_logger

from flows.dvc_pipeline import Stage
from flows.shell import stream
from mltoy.errors import EXIT_BAD_INPUT

# Words a shell passes on unchanged: no quotes, variables, globs, operators, redirections.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:=,+@%-]+")
# The interpreter by bare name: the shell would find it first on PATH, which
# flows.shell.venv_env makes this interpreter's directory, so it is the same program.
_PYTHON = re.compile(r"python(3(\.\d+)?)?")


class StageCommandError(RuntimeError):
    """A stage's command failed or did not write the outputs dvc.yaml declares.

    `bad_input`: the command exited EXIT_BAD_INPUT, as option A reads it too.
    """

    def __init__(self, message: str, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


def mltoy_arguments(cmd: str) -> list[str] | None:
    """The arguments of `cmd` if a shell would run exactly `python -m mltoy.cli ARGS` in
    this environment, else None.

    The contract for running a stage in-process: its command is `python` (or `python3`,
    `python3.11`: a bare name) `-m mltoy.cli` then arguments, all plain words separated by
    spaces. Then the shell would start this very interpreter with these very words, and
    `mltoy.cli.run` in this process does the same without a new interpreter. Anything
    else (a path to another interpreter, quotes, `$VAR`, globs, `&&`, `>`, a command
    list) runs in a shell, as `dvc repro` runs it.
    """
    words = cmd.split()
    if not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    if len(words) > 3 and _PYTHON.fullmatch(words[0]) and words[1:3] == ["-m", "mltoy.cli"]:
        return words[3:]
    return None


def run_command(stage: Stage, project: Path) -> None:
    """mltoy stages run in-process (no new interpreter); anything else in a shell."""
    cwd = project / stage.wdir
    arguments = mltoy_arguments(stage.cmd)
    if arguments is not None:
        # Imported here: the stages bring pandas and scikit-learn (seconds), which a run
        # whose stages are all cached never needs.
        from mltoy import cli as mltoy_cli

        mltoy_cli.run(arguments, cwd=cwd)
        return
    code, lines = stream(stage.cmd, cwd, get_run_logger().info)
    if code != 0:
        raise StageCommandError(
            f"stage {stage.name}: command exited with {code}: {lines[-1] if lines else ''}",
            bad_input=code == EXIT_BAD_INPUT,
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
