"""mlflow-users: the flows' MLflow login is made once, kept, never an admin."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

import pytest

from deploy.mlflow_users import (
    User,
    UsersApiError,
    ensure_user,
    read_credentials,
    write_credentials,
)


@dataclass
class FakeAuthClient:
    """What MLflow's user endpoints do to its user store, in memory."""

    users: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def get_user(self, username: str) -> User:
        if username not in self.users:
            raise UsersApiError(404, "RESOURCE_DOES_NOT_EXIST", username)
        return User(username, self.users[username][1])

    def create_user(self, username: str, password: str) -> None:
        self.users[username] = (password, False)

    def update_user_password(self, username: str, password: str) -> None:
        self.users[username] = (password, self.users[username][1])

    def update_user_admin(self, username: str, is_admin: bool) -> None:
        self.users[username] = (self.users[username][0], is_admin)


def test_credentials_file_round_trips_in_mlflows_format(tmp_path):
    path = tmp_path / "mlflow/credentials"
    write_credentials(path, "mltoy-flows", "p%ss=word")
    assert read_credentials(path) == ("mltoy-flows", "p%ss=word")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The names MLflow's client reads (mlflow.utils.credentials).
    assert "mlflow_tracking_username = mltoy-flows" in path.read_text()
    assert read_credentials(tmp_path / "missing") is None


def test_the_user_is_created_then_its_password_kept_in_step_with_the_file():
    client = FakeAuthClient()
    assert ensure_user(client, "mltoy-flows", "first-password") == "created"
    assert client.users["mltoy-flows"] == ("first-password", False)
    assert ensure_user(client, "mltoy-flows", "first-password") == "kept"
    # A new settings volume (`down -v`) with the user still in MLflow's database.
    assert ensure_user(client, "mltoy-flows", "second-password") == "kept"
    assert client.users["mltoy-flows"] == ("second-password", False)


def test_a_flows_user_made_admin_by_hand_loses_it():
    client = FakeAuthClient({"mltoy-flows": ("pw", True)})
    ensure_user(client, "mltoy-flows", "pw")
    assert client.users["mltoy-flows"] == ("pw", False)


def test_other_errors_are_not_mistaken_for_a_missing_user():
    class Refusing(FakeAuthClient):
        def get_user(self, username):
            raise UsersApiError(403, "PERMISSION_DENIED", "no")

    with pytest.raises(UsersApiError):
        ensure_user(Refusing(), "mltoy-flows", "pw")
