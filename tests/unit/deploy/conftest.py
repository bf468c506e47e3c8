"""An S3 + IAM server that enforces IAM, in-process: the stand-in's own launcher code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import pytest

from harness import load_script

ROOT_USER = "root-user"
ROOT_SECRET = "root-secret-value"


def load_standin() -> ModuleType:
    """The S3 stand-in's launcher, docker/s3-standin/serve.py."""
    return load_script("docker/s3-standin/serve.py", "s3_standin_serve")


@dataclass
class Store:
    endpoint: str

    def client(self, service: str, key_id: str = ROOT_USER, secret: str = ROOT_SECRET):
        from botocore.session import get_session

        return get_session().create_client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )


@pytest.fixture(scope="module")
def standin() -> ModuleType:
    return load_standin()


@pytest.fixture(scope="module")
def store(standin: ModuleType) -> Iterator[Store]:
    """moto's server with the root key seeded and IAM enforced, as in the stand-in image.

    Enforcement and moto's backends are process-wide: both are put back afterwards.
    """
    from moto import settings
    from moto.backends import get_backend
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.s3.responses import ACTION_MAP
    from werkzeug.serving import make_server

    saved_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    saved_head = ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"]
    standin.seed_root_key(ROOT_USER, ROOT_SECRET)
    standin.enforce_iam()
    server = make_server(
        "127.0.0.1", 0, standin.make_app(), threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Store(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = saved_count
        ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = saved_head
        for name in ("iam", "s3"):
            for account in get_backend(name).values():
                for backend in account.values():
                    backend.reset()
