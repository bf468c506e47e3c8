"""The flows' own MLflow login, handed to flow containers like the DVC remote's key.

Runs once per `docker compose up` with the MLflow override (service `mlflow-users`), after
the MLflow server is healthy, as MLflow's admin (MLFLOW_TRACKING_USERNAME/PASSWORD, read by
MLflow's own client). It makes sure the user `mltoy-flows` exists, is not an admin, and has
the password written in `mlflow/credentials` of the `remote-settings` volume, the file in
MLflow's own format that flow containers read (read-only) as `~/.mlflow/credentials`. The
password is generated the first time and kept afterwards; flows never get the admin's.

With MLflow's default permission READ, that user reads everything and manages what it
creates: the experiments of both deployments and the registered model.
"""

from __future__ import annotations

import configparser
import os
import secrets
import sys
import time
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class UsersSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    mlflow_tracking_uri: str = Field(pattern=r"^https?://")
    mlflow_tracking_username: str = Field(min_length=1)  # the admin
    mlflow_flows_user: str = Field("mltoy-flows", pattern=r"^[A-Za-z0-9._@\-]{3,64}$")
    settings_dir: Path = Path("/run/mltoy")

    @property
    def credentials_file(self) -> Path:
        return self.settings_dir / "mlflow/credentials"


def read_credentials(path: Path) -> tuple[str, str] | None:
    """(user, password) from an MLflow credentials file, if there is one."""
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    section = parser["mlflow"] if parser.has_section("mlflow") else {}
    user = section.get("mlflow_tracking_username")
    password = section.get("mlflow_tracking_password")
    return (user, password) if user and password else None


def write_credentials(path: Path, user: str, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        f"[mlflow]\nmlflow_tracking_username = {user}\nmlflow_tracking_password = {password}\n"
    )
    tmp.chmod(0o600)
    os.replace(tmp, path)


def ensure_user(client, user: str, password: str) -> str:
    """Create `user` with `password`, or set that password; never an admin. Says which."""
    from mlflow.exceptions import RestException

    try:
        existing = client.get_user(user)
    except RestException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_user(user, password)
        return "created"
    client.update_user_password(user, password)
    if existing.is_admin:
        client.update_user_admin(user, False)
    return "kept"


def wait_for_admin(client, admin: str, timeout: float = 60) -> None:
    """The admin's login works (the server may still be starting its workers)."""
    from mlflow.exceptions import MlflowException

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get_user(admin)
            return
        except MlflowException as exc:
            if "error code 401" in str(exc):
                raise RuntimeError(
                    f"MLflow refuses the admin login '{admin}': MLFLOW_ADMIN_PASSWORD must be the "
                    "password the admin was created with on the first start (MLflow ignores "
                    "later changes; change it through MLflow's update-password API)"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def main() -> int:
    try:
        settings = UsersSettings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            print(f"mlflow-users: error: {where}: {error['msg']}", file=sys.stderr)
        return 2
    from mlflow.server.auth.client import AuthServiceClient

    client = AuthServiceClient(settings.mlflow_tracking_uri)
    user = settings.mlflow_flows_user
    current = read_credentials(settings.credentials_file)
    password = current[1] if current and current[0] == user else secrets.token_urlsafe(24)
    try:
        wait_for_admin(client, settings.mlflow_tracking_username)
        outcome = ensure_user(client, user, password)
    except Exception as exc:
        print(f"mlflow-users: error: {exc}", file=sys.stderr)
        return 1
    write_credentials(settings.credentials_file, user, password)
    print(f"mlflow-users: user {user} {outcome} (not an admin)")
    print(f"mlflow-users: wrote {settings.credentials_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
