"""The MLflow server's place in the stack's PostgreSQL: its own role and databases.

Runs once per `docker compose up` with the MLflow override (service `mlflow-init`), before
the MLflow server starts, as the cluster's superuser (the `prefect` role the postgres image
made). PostgreSQL images run /docker-entrypoint-initdb.d only on an empty data directory, so
a stack that already has a database volume would never get MLflow's; this step is
idempotent and works on both:

- role `mlflow` (LOGIN, no other attribute), its password set to MLFLOW_DB_PASSWORD on
  every run (a changed .env takes effect; nothing else keeps the old one);
- databases `mlflow` (runs, registry) and `mlflow_auth` (MLflow's users), owned by it;
- nobody else may connect to them, and `mlflow` may not connect to Prefect's database.
"""

from __future__ import annotations

import asyncio
import sys
import time

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from deploy.settings import load_settings

_NAME = r"^[a-z_][a-z0-9_]{0,62}$"  # unquoted PostgreSQL identifiers: no quoting games


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    postgres_host: str = "postgres"
    postgres_port: int = 5432
    # The superuser made by the postgres image (POSTGRES_USER) and its database.
    postgres_user: str = Field("prefect", pattern=_NAME)
    postgres_db: str = Field("prefect", pattern=_NAME)
    postgres_password: SecretStr
    mlflow_db_user: str = Field("mlflow", pattern=_NAME)
    mlflow_db_password: SecretStr
    mlflow_db_name: str = Field("mlflow", pattern=_NAME)
    mlflow_auth_db_name: str = Field("mlflow_auth", pattern=_NAME)

    @field_validator("mlflow_db_password")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters")
        return value


async def _connect(settings: DatabaseSettings, timeout: float):
    """The superuser's connection; retried while the server starts or restarts."""
    import asyncpg

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncpg.connect(
                host=settings.postgres_host,
                port=settings.postgres_port,
                user=settings.postgres_user,
                password=settings.postgres_password.get_secret_value(),
                database=settings.postgres_db,
            )
        except (OSError, asyncpg.CannotConnectNowError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(2)


async def provision(settings: DatabaseSettings, timeout: float = 60) -> list[str]:
    """Make (or bring up to date) the role and databases; return what was done."""
    conn = await _connect(settings, timeout)
    role, done = settings.mlflow_db_user, []
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f"CREATE ROLE {role} LOGIN")
            done.append(f"created role {role}")
        # Utility statements take no parameters: the password goes in as a quoted literal.
        password = await conn.fetchval(
            "SELECT quote_literal($1)", settings.mlflow_db_password.get_secret_value()
        )
        await conn.execute(
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password}"
        )
        for database in (settings.mlflow_db_name, settings.mlflow_auth_db_name):
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f"CREATE DATABASE {database} OWNER {role}")
                done.append(f"created database {database}")
            await conn.execute(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC")
            await conn.execute(f"GRANT ALL ON DATABASE {database} TO {role}")
        # Every role may connect to every database by default (PUBLIC): not MLflow to Prefect's.
        await conn.execute(f"REVOKE CONNECT ON DATABASE {settings.postgres_db} FROM PUBLIC")
    finally:
        await conn.close()
    return done


def main() -> int:
    settings = load_settings(DatabaseSettings, "mlflow-init")
    if settings is None:
        return 2
    try:
        done = asyncio.run(provision(settings))
    except Exception as exc:  # one line that names the server, not a traceback
        where = f"{settings.postgres_host}:{settings.postgres_port}"
        print(f"mlflow-init: error: PostgreSQL at {where}: {exc}", file=sys.stderr)
        return 1
    for line in done or ["role and databases up to date"]:
        print(f"mlflow-init: {line}")
    print(
        f"mlflow-init: role {settings.mlflow_db_user} owns databases "
        f"{settings.mlflow_db_name} and {settings.mlflow_auth_db_name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
