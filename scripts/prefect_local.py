#!/usr/bin/env python3
"""`python scripts/prefect_local.py [--port N] [--local]`: print the Prefect API a
`make run` uses (`--local`: the local server's, whatever is configured).

PREFECT_API_URL when it is set (in the environment, or in the active profile as
`make prefect-start` sets it); otherwise this checkout's local server (PREFECT_HOME),
started on first use with Prefect's own `prefect server start --background`, in a
session of its own so that a Ctrl-C in the terminal leaves it running, and kept for the
next run: without it every run starts Prefect's temporary server and stops it again,
which costs more than the run. `make prefect-stop` (`prefect server stop`) stops it.

Standard library only: it runs before every `make run`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Mapping
from pathlib import Path

PID_FILE = "server.pid"  # prefect.cli._server_utils.SERVER_PID_FILE_NAME
SERVER_APP = "prefect.server.api.server:create_app"  # in the command line of the server it starts


def configured_url(env: Mapping[str, str]) -> str | None:
    """PREFECT_API_URL from the environment, else from the active profile, else None."""
    if env.get("PREFECT_API_URL"):
        return env["PREFECT_API_URL"]
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect")
    try:
        profiles = tomllib.loads(
            Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").read_text()
        )
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = env.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL") or None


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def background_server(home: Path) -> tuple[int, str] | None:
    """(pid, port) of the background server Prefect recorded in `home`, if that process
    is still that server; a stale record (a reboot, a killed server) is removed."""
    pid_file = home / PID_FILE
    try:
        pid = int(pid_file.read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (OSError, ValueError):
        argv = []
    if SERVER_APP in argv and "--port" in argv[:-1]:
        return pid, argv[argv.index("--port") + 1]
    pid_file.unlink(missing_ok=True)
    return None


def ensure_server(home: Path, port: int, timeout: float) -> str:
    """The local server's API URL, once it answers; started in the background if needed."""
    url = f"http://127.0.0.1:{port}/api"
    if healthy(url):
        return url
    running = background_server(home)
    if running and running[1] != str(port):
        sys.exit(
            f"prefect-local: this checkout's background server (pid {running[0]}) serves "
            f"port {running[1]}, not {port}: `make prefect-stop` first"
        )
    if running is None:  # none starting either: start one
        prefect = Path(sys.executable).parent / "prefect"
        argv = [str(prefect), "server", "start", "--background", "--host", "127.0.0.1"]
        result = subprocess.run(
            [*argv, "--port", str(port)],
            capture_output=True,
            text=True,
            start_new_session=True,
        )
        if result.returncode != 0:
            said = " ".join(result.stdout.split() + result.stderr.split())
            sys.exit(
                f"prefect-local: could not start a Prefect server on port {port}: {said} "
                "(another port: PREFECT_LOCAL_PORT=N make ...)"
            )
        print(
            f"prefect-local: started a local Prefect server in the background: UI at "
            f"http://127.0.0.1:{port} (state in {home}; `make prefect-stop` stops it)",
            file=sys.stderr,
        )
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if time.monotonic() > deadline:
            sys.exit(f"prefect-local: the server on port {port} did not answer in {timeout:.0f} s")
        time.sleep(0.25)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/prefect_local.py", description=__doc__)
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for a start")
    parser.add_argument("--local", action="store_true", help="the local server, whatever is set")
    args = parser.parse_args(argv)
    url = None if args.local else configured_url(os.environ)
    if url is None:
        home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
        home.mkdir(parents=True, exist_ok=True)
        url = ensure_server(home, args.port, args.timeout)
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
