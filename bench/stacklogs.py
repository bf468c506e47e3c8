"""Errors the stack's own services logged while a batch of runs went through.

Under load the Prefect server's database can refuse work (SQLite: `database is locked`;
PostgreSQL: its connection pool exhausted), and a worker whose loop is held up logs
`Worker has not polled in the last N seconds`; both say the bound is not the cores.
Counted in the containers' logs over a batch's time window (Docker's own log times).
"""

from __future__ import annotations

PATTERNS = {
    "prefect-server": {
        "database_locked": "sqlite3.OperationalError: database is locked",
        # the server gave up writing events (heartbeats, state changes) it could not store
        "events_dropped": "Max flush retries",
        # an automation (the zombie-run one) tried to crash a run that had already ended
        "late_crash_attempts": "Failed to set state: Run is already in terminal state",
        "server_errors": "Encountered exception in request",
        # with PostgreSQL: every connection of the server's pool busy for the pool timeout
        "pool_exhausted": "QueuePool limit",
    },
    "postgres": {"too_many_clients": "too many clients already"},
    "worker": {"worker_not_polled": "Worker has not polled in the last"},
}


def log_errors(project: str, since: float | None = None, until: float | None = None) -> dict:
    """{pattern name: lines} in the services' logs between `since` and `until` (epoch
    seconds; the whole log by default)."""
    import docker
    from docker.errors import NotFound

    engine = docker.from_env()
    counts: dict[str, int] = {}
    for service, patterns in PATTERNS.items():
        try:
            container = engine.containers.get(f"{project}-{service}-1")
            text = container.logs(since=since, until=until).decode(errors="replace")
        except NotFound:
            text = ""
        lines = text.splitlines()
        counts.update(
            {name: sum(needle in line for line in lines) for name, needle in patterns.items()}
        )
    return counts
