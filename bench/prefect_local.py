"""One local Prefect server for a whole section, so no run pays for a temporary one.

Without PREFECT_API_URL every flow process starts its own temporary server (~20 s); the
local timings would measure that. The server gets a throw-away PREFECT_HOME; clients get
another, and their result storage (option B's stage cache) lives under it too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import VENV_BIN, child_env, log, stop_process_group, wait_http
from harness.stack import free_port


@contextmanager
def local_server(workdir: Path) -> Iterator[dict[str, str]]:
    """Start `prefect server start`; yield the environment a client process needs."""
    port = free_port()
    server_home = workdir / "prefect-server-home"
    server_home.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "prefect-server.log"
    env = child_env({"PREFECT_HOME": str(server_home)}, drop=("PREFECT_API_URL",))
    argv = [
        str(VENV_BIN / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/api"
        seconds = wait_http(f"{url}/health", timeout=240)
        log(f"local Prefect server up on {url} in {seconds:.1f}s (pid {process.pid})")
        client_home = workdir / "prefect-client-home"
        yield {
            "PREFECT_API_URL": url,
            "PREFECT_HOME": str(client_home),
            "PREFECT_LOCAL_STORAGE_PATH": str(client_home / "storage"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    finally:
        stop_process_group(process)
