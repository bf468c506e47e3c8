"""The flows' own MLflow login, handed to flow containers like the DVC remote's key.

Runs once per `docker compose up` with the MLflow override (service `mlflow-users`), after
the MLflow server is healthy, as MLflow's admin (MLFLOW_TRACKING_USERNAME/PASSWORD), through
the basic-auth app's REST API (MLflow's AuthServiceClient needs the full server package,
Flask included; the image has the client only). It makes sure the user `mltoy-flows`
exists, is not an admin, and has the password written in `mlflow/credentials` of the
`remote-settings` volume, the file in MLflow's own format that flow containers read
(read-only) as `~/.mlflow/credentials`. The password is generated the first time and kept
afterwards; flows never get the admin's.

With MLflow's default permission READ, that user reads everything and manages what it
creates: the experiments of both deployments and the registered model.
"""

from __future__ import annotations

import configparser
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from deploy.settings import load_settings

USERS_API = "/api/2.0/mlflow/users"


class UsersSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    mlflow_tracking_uri: str = Field(pattern=r"^https?://")
    mlflow_tracking_username: str = Field(min_length=1)  # the admin
    mlflow_tracking_password: SecretStr
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


class UsersApiError(RuntimeError):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status, self.error_code = status, error_code


@dataclass
class User:
    username: str
    is_admin: bool


class UsersApi:
    """MLflow's user endpoints (basic-auth app), as its AuthServiceClient calls them."""

    def __init__(self, base_url: str, admin: str, password: str, timeout: float = 30) -> None:
        self.http = httpx.Client(base_url=base_url, auth=(admin, password), timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, f"{USERS_API}/{path}", **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text.strip()[:200]}
            code = body.get("error_code", "HTTP_ERROR")
            raise UsersApiError(response.status_code, code, body.get("message", ""))
        return response.json() if response.content else {}

    def get_user(self, username: str) -> User:
        user = self._call("GET", "get", params={"username": username})["user"]
        return User(user["username"], bool(user.get("is_admin")))

    def create_user(self, username: str, password: str) -> None:
        self._call("POST", "create", json={"username": username, "password": password})

    def update_user_password(self, username: str, password: str) -> None:
        self._call("PATCH", "update-password", json={"username": username, "password": password})

    def update_user_admin(self, username: str, is_admin: bool) -> None:
        self._call("PATCH", "update-admin", json={"username": username, "is_admin": is_admin})


def ensure_user(api: UsersApi, user: str, password: str) -> str:
    """Create `user` with `password`, or set that password; never an admin. Says which."""
    try:
        existing = api.get_user(user)
    except UsersApiError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        api.create_user(user, password)
        return "created"
    api.update_user_password(user, password)
    if existing.is_admin:
        api.update_user_admin(user, False)
    return "kept"


def wait_for_admin(api: UsersApi, admin: str, timeout: float = 60) -> None:
    """The admin's login works (the server may still be starting its workers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            api.get_user(admin)
            return
        except UsersApiError as exc:
            if exc.status == 401:
                raise RuntimeError(
                    f"MLflow refuses the admin login '{admin}': MLFLOW_ADMIN_PASSWORD must be the "
                    "password the admin was created with on the first start (MLflow ignores "
                    "later changes; change it through MLflow's update-password API)"
                ) from None
            if time.monotonic() > deadline:
                raise
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(2)


def main() -> int:
    settings = load_settings(UsersSettings, "mlflow-users")
    if settings is None:
        return 2
    api = UsersApi(
        settings.mlflow_tracking_uri,
        settings.mlflow_tracking_username,
        settings.mlflow_tracking_password.get_secret_value(),
    )
    user = settings.mlflow_flows_user
    current = read_credentials(settings.credentials_file)
    password = current[1] if current and current[0] == user else secrets.token_urlsafe(24)
    try:
        wait_for_admin(api, settings.mlflow_tracking_username)
        outcome = ensure_user(api, user, password)
    except Exception as exc:
        print(f"mlflow-users: error: {exc}", file=sys.stderr)
        return 1
    write_credentials(settings.credentials_file, user, password)
    print(f"mlflow-users: user {user} {outcome} (not an admin)")
    print(f"mlflow-users: wrote {settings.credentials_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
