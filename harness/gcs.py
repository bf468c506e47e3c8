"""A GCS stand-in for tests: a service account of our own and the guarded emulator.

A real bucket is reached with a service-account key file (its `token_uri` is Google's
OAuth endpoint) and a gs:// URL. Here the key is made on the spot, its `token_uri` points
at the stand-in (docker/gcs-standin/serve.py), which checks the key's signed JWTs against
the public half only. So the very settings a user gives for a real bucket are what the
tests exercise; only where the requests go differs (STORAGE_EMULATOR_HOST, the variable
every Google storage client honours).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harness import load_script

# gcsfs >= 2026.x asks GCS's gRPC control API for each bucket's layout (hierarchical or
# zonal). No emulator serves it: each lookup waits out a 60 s deadline, and a failed one is
# not cached. Emulator runs (only) turn that lookup off; a real bucket keeps gcsfs's default.
EMULATOR_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


@dataclass(frozen=True)
class ServiceAccount:
    key_file: Path  # what a user gives: GCS_CREDENTIALS_FILE
    public_key_file: Path  # what the stand-in checks signatures with
    email: str


def make_service_account(directory: Path, token_uri: str) -> ServiceAccount:
    """A service-account key file (Google's JSON format) whose tokens come from `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = "mltoy-flows@mltoy-test.iam.gserviceaccount.com"
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "mltoy-test",
                "private_key_id": "standin-key",
                "private_key": private_pem,
                "client_email": email,
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    key_file.chmod(0o600)
    public_key_file = directory / "service-account.pub.pem"
    public_key_file.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ServiceAccount(key_file, public_key_file, email)


def private_key_lines(account: ServiceAccount) -> list[str]:
    """The key's base64 lines: what must never show up in a log, a layer or an inspect."""
    private_key = json.loads(account.key_file.read_text())["private_key"]
    return [line for line in private_key.splitlines() if line and not line.startswith("-----")]


def load_standin() -> ModuleType:
    """The stand-in's launcher, docker/gcs-standin/serve.py."""
    return load_script("docker/gcs-standin/serve.py", "gcs_standin_serve")
