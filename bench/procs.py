"""Subprocesses the benchmark times, and small helpers around them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent


class CommandFailed(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    check: bool = True,
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
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as handle:
            handle.write(
                f"$ {' '.join(argv)}  (cwd {cwd}; {elapsed:.2f}s; rc {result.returncode})\n"
            )
            handle.write(result.stdout + result.stderr + "\n")
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise CommandFailed(f"{' '.join(argv)} exited {result.returncode}:\n{tail}")
    return elapsed, result


def wait_http(url: str, timeout: float) -> float:
    """Poll `url` until it answers 2xx; return the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if 200 <= response.status < 300:
                    return time.monotonic() - start
        except OSError:
            pass
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, grace: float = 20) -> None:
    """End a process we started in its own session (and its children), by its id."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass
