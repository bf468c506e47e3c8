"""`make remote-config`: the developer's checkout reaches the stack's DVC remote.

The stack publishes its S3 API on 127.0.0.1 only; remote-init made a key for the developer,
limited to the DVC bucket (neither the root key nor the flows' key) and kept in the
`developer-settings` volume. This writes both into `.dvc/config.local` (git-ignored) as the
default remote `stack`, so `dvc pull`, `dvc push` and `dvc status -c` work from the host.

Two halves: `--print-key` runs inside the stack (a one-off `remote-init` container, the only
one that mounts that volume) and prints the key as JSON; without it, on the host, it asks
compose for that and for the published port, then edits the config with DVC's own API.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from deploy.flow_identity import read_key

REMOTE = "stack"
DEVELOPER_CREDENTIALS = Path("/run/mltoy-developer/aws/credentials")


def print_key() -> int:
    """In the stack: the developer's key and the remote's URL, as one JSON line."""
    key = read_key(DEVELOPER_CREDENTIALS)
    if key is None:
        print(
            "remote-config: error: the stack has no developer key (see remote-init's log)",
            file=sys.stderr,
        )
        return 1
    url = os.environ["DVC_REMOTE_URL"]
    if not url.startswith("s3://"):
        print(
            f"remote-config: error: {url}: only the stack's S3 store is published", file=sys.stderr
        )
        return 1
    print(
        json.dumps(
            {
                "url": url,
                "access_key_id": key.access_key_id,
                "secret_access_key": key.secret_access_key,
            }
        )
    )
    return 0


def _compose(*args: str) -> str:
    return subprocess.run(
        ["docker", "compose", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def write_config(project: Path, remote: dict[str, str], endpoint: str) -> Path:
    """Make `stack` the default remote in the project's local (git-ignored) DVC config."""
    from dvc.config import Config

    config = Config(dvc_dir=project / ".dvc", validate=False)
    with config.edit("local") as local:
        local.setdefault("core", {})["remote"] = REMOTE
        local.setdefault("remote", {})[REMOTE] = {
            "url": remote["url"],
            "endpointurl": endpoint,
            "access_key_id": remote["access_key_id"],
            "secret_access_key": remote["secret_access_key"],
        }
    path = project / ".dvc/config.local"
    path.chmod(0o600)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.host_remote", description=__doc__)
    parser.add_argument("--print-key", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project-dir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    if args.print_key:
        return print_key()
    try:
        out = _compose(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "remote-init",
            "python",
            "-m",
            "deploy.host_remote",
            "--print-key",
        )
        published = _compose("port", "s3", "9000")
    except subprocess.CalledProcessError as exc:
        print(
            f"remote-config: error: {' '.join(exc.cmd[:4])}...: {exc.stderr.strip()}"
            " (is the stack up? `make up`)",
            file=sys.stderr,
        )
        return 1
    remote = json.loads(out.splitlines()[-1])
    endpoint = f"http://{published}"
    path = write_config(args.project_dir, remote, endpoint)
    print(
        f"remote-config: {path}: default remote '{REMOTE}' = {remote['url']} at {endpoint} "
        f"(key {remote['access_key_id']}, limited to that bucket)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
