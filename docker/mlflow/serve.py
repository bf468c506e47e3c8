"""Start the stack's MLflow tracking server: basic auth, PostgreSQL, artifact proxy.

`mlflow server` takes its stores as URIs, and the basic-auth app its user database from an
ini file; both carry the database password. This launcher builds them from separate
settings at start (the password URL-quoted), so the password is given once, as a value,
and never written into the image or onto the command line (`docker inspect`, `ps`):

  MLFLOW_DB_PASSWORD (required)   the `mlflow` PostgreSQL role's password
  MLFLOW_DB_HOST=postgres:5432, MLFLOW_DB_USER=mlflow,
  MLFLOW_DB_NAME=mlflow (runs, registry), MLFLOW_AUTH_DB_NAME=mlflow_auth (users)
  MLFLOW_WORKERS=2                uvicorn workers
  MLFLOW_AUTH_CACHE_SECONDS=60    how long a worker trusts a checked login (0: never)

MLflow reads the rest itself: MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD (the admin made on the
first start; MLflow has no default password), MLFLOW_ARTIFACTS_DESTINATION (where the
artifact proxy stores: s3://...), MLFLOW_S3_ENDPOINT_URL and the AWS_* credential files,
MLFLOW_SERVER_ALLOWED_HOSTS (the Host headers it answers). The Flask secret key the
basic-auth app needs (CSRF of its forms) is made per start unless
MLFLOW_FLASK_SERVER_SECRET_KEY is given.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from urllib.parse import quote

DEFAULT_PERMISSION = "READ"  # a user sees everything and changes only what it made or is given


def fail(message: str) -> None:
    print(f"mlflow-serve: error: {message}", file=sys.stderr)
    sys.exit(2)


def database_uri(password: str, database: str) -> str:
    user = os.environ.get("MLFLOW_DB_USER", "mlflow")
    host = os.environ.get("MLFLOW_DB_HOST", "postgres:5432")
    # The driver named: SQLAlchemy 2.1 defaults to psycopg 3; the image has psycopg2.
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"postgresql+psycopg2://{credentials}@{host}/{database}"


def auth_config(uri: str, cache_seconds: int = 60) -> str:
    """The basic-auth app's ini; `%` doubled for configparser's interpolation.

    `cache_seconds`: MLflow's own login cache. Without it every request re-checks the
    password hash (PBKDF2/scrypt, slow by design), and one tracked flow run makes dozens of
    requests. A password changed through the API is refused at once by the worker that
    changed it, by the other workers after at most this long (docs/mlflow.md)."""
    return (
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = {uri.replace('%', '%%')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        f"auth_cache_ttl_seconds = {cache_seconds}\n"
    )


def main() -> None:
    for name in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        if not os.environ.get(name):
            fail(f"{name} is required (the MLflow admin, made on the first start)")
    if not os.environ.get("MLFLOW_ARTIFACTS_DESTINATION"):
        fail("MLFLOW_ARTIFACTS_DESTINATION is required (where the artifact proxy stores)")
    # Out of the environment the server and its workers inherit: only the URIs carry it.
    password = os.environ.pop("MLFLOW_DB_PASSWORD", "")
    if not password:
        fail("MLFLOW_DB_PASSWORD is required (the mlflow database role's password)")
    backend = database_uri(password, os.environ.get("MLFLOW_DB_NAME", "mlflow"))
    users = database_uri(password, os.environ.get("MLFLOW_AUTH_DB_NAME", "mlflow_auth"))
    fd, ini = tempfile.mkstemp(prefix="basic_auth.", suffix=".ini")
    with os.fdopen(fd, "w") as handle:
        handle.write(auth_config(users, int(os.environ.get("MLFLOW_AUTH_CACHE_SECONDS", "60"))))
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = ini
    os.environ["MLFLOW_BACKEND_STORE_URI"] = backend
    os.environ.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_urlsafe(32))
    command = [
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--serve-artifacts",
        "--host",
        "0.0.0.0",
        "--port",
        "5000",
        "--workers",
        os.environ.get("MLFLOW_WORKERS", "2"),
    ]
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
