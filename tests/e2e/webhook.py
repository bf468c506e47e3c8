"""A webhook receiver on the stack's network: where the suite's stack sends failure
notifications (MLTOY_NOTIFY_URL). The Prefect server sends them, so the receiver is a
container the server can reach by name; it prints each request as one JSON line, which
the tests read from its log. Nothing is published on the host."""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from harness.stack import poll

PORT = 8080
# Prints {"path_ok": ..., "json": ...} per request: not the path itself, whose token is
# the URL's secret part (tests check it never shows in logs).
SCRIPT = """
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        print(json.dumps({"path_ok": self.path == os.environ["HOOK_PATH"],
                          "json": payload}), flush=True)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
"""


def notify_url(project: str, token: str) -> str:
    return f"http://{project}-webhook:{PORT}/hook/{token}"


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass
class WebhookReceiver:
    name: str  # the container's name, which is its host name on the network
    path: str

    @classmethod
    def start(cls, project: str, network: str, image: str, url: str) -> WebhookReceiver:
        name = f"{project}-webhook"
        path = url.split(f":{PORT}", 1)[1]
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(
            [
                *("docker", "run", "-d", "--name", name, "--network", network),
                *("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"),
                *("-e", f"HOOK_PATH={path}", "-e", f"PORT={PORT}"),
                *(image, "python", "-u", "-c", SCRIPT),
            ],
            check=True,
            capture_output=True,
        )
        return cls(name, path)

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)

    @staticmethod
    def remove(project: str) -> None:
        """The receiver an aborted earlier session left."""
        subprocess.run(["docker", "rm", "-f", f"{project}-webhook"], capture_output=True)

    def received(self) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["docker", "logs", self.name], capture_output=True, text=True, check=True
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def about(self, flow_run_id: UUID) -> list[dict[str, Any]]:
        """The notifications that name this flow run."""
        return [r for r in self.received() if str(flow_run_id) in json.dumps(r["json"])]

    def wait_for(self, flow_run_id: UUID, timeout: float) -> dict[str, Any]:
        """The first notification about the run, within `timeout` seconds."""
        return poll(
            lambda: next(iter(self.about(flow_run_id)), None),
            timeout,
            f"a notification about flow run {flow_run_id}",
            every=1,
        )


def fields(body: str) -> dict[str, str]:
    """'key: value' lines of the message body (deploy/automations.py, NOTIFY_BODY)."""
    return dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)
