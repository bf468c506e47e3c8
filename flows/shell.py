"""Run a command and hand each output line to a logger as it appears."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def venv_env() -> dict[str, str]:
    """The current environment with this interpreter's bin dir first on PATH.

    `dvc.yaml` commands say `python -m ...`; they must run in the same environment as
    the flow, whatever PATH the caller had.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def stream(
    command: Sequence[str] | str,
    cwd: Path,
    log: Callable[[str], None],
) -> tuple[int, list[str]]:
    """Run `command` (argv, or a shell string), log its merged stdout/stderr line by line."""
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=venv_env(),
        shell=isinstance(command, str),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            log(line)
        return process.wait(), lines
