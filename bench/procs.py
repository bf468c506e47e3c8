"""Subprocesses the benchmark times, and small helpers around them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
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
    elapsed, result, _ = run_measured(argv, cwd, env, log_file, timeout)
    return elapsed, result


def run_measured(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    timeout: float = 1800,
) -> tuple[float, subprocess.CompletedProcess[str], int]:
    """As run_timed, plus the peak resident memory in bytes of the process or of the
    largest of the descendants it waited for (the kernel's ru_maxrss, from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, stop_process_group, (process,))
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(list(argv), process.returncode, out.read(), err.read())
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as handle:
            handle.write(
                f"$ {' '.join(argv)}  (cwd {cwd}; {elapsed:.2f}s; rc {result.returncode})\n"
            )
            handle.write(result.stdout + result.stderr + "\n")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise CommandFailed(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")
    return elapsed, result, usage.ru_maxrss * 1024  # Linux counts it in KiB


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
