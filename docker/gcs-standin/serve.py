"""The GCS stand-in's server: gcp-storage-emulator's JSON API behind OAuth, as Google's is.

The plain emulator answers anyone, so it could not show that the flows really use the
service-account key file a real bucket needs. This launcher makes it behave like GCS in
the ways the stack relies on:

- a service-account key file works unchanged: its `token_uri` points here (a real key's
  points at Google's), and POST /token exchanges the key's signed JWT for an access token,
  as Google's OAuth endpoint does. The JWT is checked against the account's public key
  (GCS_STANDIN_PUBLIC_KEY, a PEM file: the stand-in never holds the private key);
- every storage request must carry one of those access tokens (401 otherwise);
- the emulator's own /wipe is refused (nobody on the network may empty the store);
- buckets are made once, at start (GCS_STANDIN_BUCKETS, comma-separated), as a user makes
  them in the console: DVC and remote-init never create GCS buckets;
- GET / answers 200 without a token, for healthchecks.

Not for production: state lives in memory and is lost when the process stops.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN_PATH = "/token"
HEALTH_PATH = "/"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses its assertions to Google's endpoint whatever the key's token_uri.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
TOKEN_SECONDS = 3600
# Clock skew a real OAuth server tolerates on `iat`/`exp`.
SKEW_SECONDS = 300


class Tokens:
    """Access tokens issued for a verified JWT assertion; thread-safe."""

    def __init__(self, public_key_pem: bytes) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        self._key = load_pem_public_key(public_key_pem)
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def exchange(self, assertion: str, audiences: set[str]) -> str:
        """An access token for a JWT signed with the account's key (ValueError otherwise)."""
        claims = self._verify(assertion)
        now = time.time()
        if claims.get("aud") not in audiences:
            raise ValueError(f"the assertion's audience {claims.get('aud')!r} is not this server")
        if not claims.get("iat", now + SKEW_SECONDS + 1) <= now + SKEW_SECONDS:
            raise ValueError("the assertion was issued in the future")
        if not now - SKEW_SECONDS < claims.get("exp", 0):
            raise ValueError("the assertion has expired")
        token = "standin-" + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = now + TOKEN_SECONDS
        return token

    def valid(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self._lock:
            return self._issued.get(token.strip(), 0) > time.time()

    def _verify(self, assertion: str) -> dict[str, Any]:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_unbase64(header_b64))
            if header.get("alg") != "RS256":
                raise ValueError(f"unsupported JWT algorithm {header.get('alg')!r}")
            self._key.verify(  # type: ignore[union-attr]
                _unbase64(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            return json.loads(_unbase64(claims_b64))
        except InvalidSignature:
            raise ValueError("the assertion is not signed by the service account's key") from None
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed assertion: {exc}") from None


def _unbase64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _reply(handler: Any, status: HTTPStatus, body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(content)))
    handler.end_headers()
    handler.wfile.write(content)


def _error(handler: Any, status: HTTPStatus, message: str) -> None:
    _reply(handler, status, {"error": {"code": status.value, "message": message}})


def guard(tokens: Tokens) -> None:
    """Put OAuth in front of the emulator's router (its one entry point for every method)."""
    from gcp_storage_emulator import server as emulator

    route = emulator.Router.handle

    def handle(router: Any, method: str) -> None:
        handler = router._request_handler
        path = urlparse(handler.path).path
        if path == HEALTH_PATH and method == "GET":
            return route(router, method)
        if path == TOKEN_PATH and method == "POST":
            return _token(handler, tokens)
        if path == "/wipe":
            return _error(handler, HTTPStatus.FORBIDDEN, "the emulator's /wipe is disabled")
        if not tokens.valid(handler.headers.get("Authorization")):
            return _error(
                handler, HTTPStatus.UNAUTHORIZED, "a valid OAuth access token is required"
            )
        return route(router, method)

    emulator.Router.handle = handle


def _token(handler: Any, tokens: Tokens) -> None:
    length = int(handler.headers.get("Content-Length") or 0)
    form = parse_qs(handler.rfile.read(length).decode())
    if form.get("grant_type") != [JWT_BEARER] or not form.get("assertion"):
        return _reply(handler, HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"})
    host = handler.headers.get("Host", "")
    try:
        token = tokens.exchange(
            form["assertion"][0], {GOOGLE_TOKEN_URI, f"http://{host}{TOKEN_PATH}"}
        )
    except ValueError as exc:
        body = {"error": "invalid_grant", "error_description": str(exc)}
        return _reply(handler, HTTPStatus.BAD_REQUEST, body)
    body = {"access_token": token, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"}
    return _reply(handler, HTTPStatus.OK, body)


def make_server(host: str, port: int, public_key_pem: bytes, buckets: list[str]) -> Any:
    """The guarded emulator (in memory) with `buckets` made; call .start() / .stop()."""
    from gcp_storage_emulator.handlers import buckets as bucket_handlers
    from gcp_storage_emulator.server import create_server

    guard(Tokens(public_key_pem))
    server = create_server(host, port, in_memory=True)
    for name in buckets:
        bucket_handlers.create_bucket(name, server._storage)
    return server


def main() -> int:
    key_file = os.environ.get("GCS_STANDIN_PUBLIC_KEY")
    if not key_file or not Path(key_file).is_file():
        print(
            "gcs-standin: GCS_STANDIN_PUBLIC_KEY must name the service account's public key "
            "(a PEM file)",
            file=sys.stderr,
        )
        return 2
    buckets = [b for b in os.environ.get("GCS_STANDIN_BUCKETS", "").split(",") if b]
    host = os.environ.get("STANDIN_HOST", "0.0.0.0")
    port = int(os.environ.get("STANDIN_PORT", "4443"))
    server = make_server(host, port, Path(key_file).read_bytes(), buckets)
    print(
        f"gcs-standin: GCS JSON API (OAuth enforced) on {host}:{port}; "
        f"buckets: {', '.join(buckets) or 'none'}",
        flush=True,
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
