"""Subprocesses the benchmark times, and small helpers around them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.stack import poll

PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent


class CommandFailed(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(extra: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """This environment, with the venv first on PATH, plus `extra`, minus `drop`."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    for name in drop:
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_timed(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    timeout: float = 1800,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `argv`, return (wall seconds, result); output kept in `log_file` if given."""
    start = time.perf_counter()
    result = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - start
    _log(log_file, argv, cwd, elapsed, result)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise CommandFailed(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")
    return elapsed, result


def _log(
    log_file: Path | None,
    argv: Sequence[str],
    cwd: Path,
    elapsed: float,
    result: subprocess.CompletedProcess[str],
) -> None:
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as handle:
            handle.write(
                f"$ {' '.join(argv)}  (cwd {cwd}; {elapsed:.2f}s; rc {result.returncode})\n"
            )
            handle.write(result.stdout + result.stderr + "\n")


# Runs the command as its child and reports the child's peak RSS (and wall time), the
# way /usr/bin/time does: a child forked from the (large) benchmark process itself would
# count the benchmark's own pages in its ru_maxrss (Linux keeps the high-water mark
# across fork and exec); forked from this small interpreter, it counts about 10 MB of it.
_MEASURE = (
    "import os, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "child = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "elapsed = time.perf_counter() - start\n"
    "open(sys.argv[1], 'w').write(f'{elapsed} {usage.ru_maxrss * 1024}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_measured(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    timeout: float = 1800,
) -> tuple[float, subprocess.CompletedProcess[str], int]:
    """As run_timed, plus the peak resident memory in bytes of the process or of the
    largest of the descendants it waited for (the kernel's ru_maxrss); the wall time is
    the command's alone (not the measuring interpreter's start)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "measured"
        command = [PYTHON, "-c", _MEASURE, str(report), *argv]
        _, result = run_timed(command, cwd, env, None, timeout)
        elapsed_text, rss_text = report.read_text().split()
    result.args = list(argv)
    elapsed = float(elapsed_text)
    _log(log_file, argv, cwd, elapsed, result)
    return elapsed, result, int(rss_text)


def wait_http(url: str, timeout: float) -> float:
    """Poll `url` until it answers 2xx; return the seconds it took."""

    def answers() -> bool | None:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return 200 <= response.status < 300 or None
        except OSError:
            return None

    start = time.monotonic()
    poll(answers, timeout, url, every=0.5)
    return time.monotonic() - start


def stop_process_group(process: subprocess.Popen) -> None:
    """End a process we started in its own session (and its children), by its id."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
