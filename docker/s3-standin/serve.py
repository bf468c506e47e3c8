"""The S3 stand-in's server: moto's S3 and IAM on one port, with IAM enforced.

Plain `moto_server` accepts any key for anything, so it could not show that the flows'
key is limited to their bucket. This launcher makes the stand-in behave like a real store
in the ways the stack relies on:

- every request must be signed by a key moto's IAM knows, and is checked against that
  key's policies (moto's `INITIAL_NO_AUTH_ACTION_COUNT` = 0);
- the root key is MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (the same variables MinIO reads),
  seeded as an IAM user with full access, so remote-init can create the bucket and the
  flows' user through the IAM API (moto routes a request by its SigV4 credential scope);
- moto's own control API (/moto-api: reset, reset-auth, a dump of every secret) is
  refused, so nobody on the network can switch enforcement off or read the keys;
- GET /minio/health/live answers 200 (as MinIO's liveness probe does) for healthchecks.

Not for production: state lives in memory and is lost when the container stops.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

ADMIN_USER = "stand-in-root"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
HEALTH_PATH = "/minio/health/live"
ANONYMOUS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Anonymous access is not allowed</Message></Error>\n"
)


def seed_root_key(access_key_id: str, secret_access_key: str) -> None:
    """Make (access_key_id, secret_access_key) an IAM key with full access."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if ADMIN_USER not in backend.users:
        backend.create_user(region_name="us-east-1", user_name=ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "full-access", json.dumps(ADMIN_POLICY))
    if access_key_id in backend.access_keys:
        return
    key = backend.create_access_key(ADMIN_USER)
    # moto generates key ids; the root key is chosen by the user, as MinIO's is.
    del backend.access_keys[key.access_key_id]
    key.access_key_id, key.secret_access_key = access_key_id, secret_access_key
    backend.access_keys[access_key_id] = key


def enforce_iam() -> None:
    """Check every request against IAM, naming actions as AWS does.

    moto authorizes HEAD bucket as `s3:HeadBucket`, an action IAM does not have (AWS and
    MinIO check `s3:ListBucket`), so a policy valid on a real store would be refused here.
    """
    from moto import settings
    from moto.s3.responses import ACTION_MAP

    ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guarded(app: WsgiApp) -> WsgiApp:
    """Refuse moto's control API; answer the liveness probe without credentials."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        if path.startswith("/moto-api"):
            return _forbidden(start_response, b"moto's control API is disabled in the stand-in\n")
        if "HTTP_AUTHORIZATION" not in environ:
            # moto's IAM check expects a signed request (an anonymous one would be a 500).
            return _forbidden(start_response, ANONYMOUS_DENIED)
        return app(environ, start_response)

    return wrapper


def _forbidden(start_response: Callable[..., Any], body: bytes) -> Iterable[bytes]:
    start_response(
        "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def make_app() -> WsgiApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return guarded(DomainDispatcherApplication(create_backend_app))


def main() -> int:
    user, password = os.environ.get("MINIO_ROOT_USER"), os.environ.get("MINIO_ROOT_PASSWORD")
    if not (user and password):
        print("s3-standin: MINIO_ROOT_USER and MINIO_ROOT_PASSWORD are required", file=sys.stderr)
        return 2
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    seed_root_key(user, password)
    enforce_iam()
    host, port = (
        os.environ.get("STANDIN_HOST", "0.0.0.0"),
        int(os.environ.get("STANDIN_PORT", "9000")),
    )
    server = make_server(host, port, make_app(), threaded=True, request_handler=MotoRequestHandler)
    print(f"s3-standin: S3 + IAM (enforced) on {host}:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
