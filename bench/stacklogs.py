"""Errors the stack's own services logged while a batch of runs went through.

Under load the Prefect server's SQLite database can answer `database is locked`, and a
worker whose loop is held up logs `Worker has not polled in the last N seconds`; both
say the bound is not the cores. Counted per batch window in the containers' logs
(`docker logs --timestamps`).

`python -m bench.stacklogs reconstruct OUT_DIR BENCH_LOG COMPOSE_LOG YYYY-MM-DD` rebuilds
a scale.json that a broken-off run never wrote, from its stderr and the compose logs it
dumped; `python -m bench.stacklogs SCALE_JSON LOG_DIR BENCH_LOG YYYY-MM-DD` annotates a saved
scale.json whose batches predate this count, from logs saved before the stack went down
(LOG_DIR/prefect-server.log, LOG_DIR/worker.log) and the benchmark's own stderr.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

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


def _when(line: str) -> float | None:
    """Epoch seconds of a `docker logs --timestamps` line (nanoseconds cut to micro)."""
    stamp = line.split(" ", 1)[0]
    if not stamp.endswith("Z") or "T" not in stamp:
        return None
    head, _, frac = stamp[:-1].partition(".")
    try:
        moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.timestamp() + (float(f"0.{frac[:6]}") if frac else 0.0)


def count(text: str, patterns: dict[str, str], since: float, until: float) -> dict[str, int]:
    counts = dict.fromkeys(patterns, 0)
    for line in text.splitlines():
        when = _when(line)
        if when is None or not since <= when <= until:
            continue
        for name, needle in patterns.items():
            if needle in line:
                counts[name] += 1
    return counts


def live_logs(project: str, service: str) -> str:
    result = subprocess.run(
        ["docker", "logs", "--timestamps", f"{project}-{service}-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


def errors(logs: dict[str, str], since: float, until: float) -> dict[str, int]:
    found: dict[str, int] = {}
    for service, patterns in PATTERNS.items():
        found.update(count(logs.get(service, ""), patterns, since, until))
    return found


def bench_log_windows(bench_log: str, day: str) -> list[tuple[float, float]]:
    """Batch windows of a run whose batches lack them, from its stderr: each
    `scale ...` line ends a batch, which began at the line before it."""
    stamps: list[tuple[float, bool]] = []
    for line in bench_log.splitlines():
        if not line.startswith("[bench "):
            continue
        clock = line[len("[bench ") : len("[bench ") + 8]
        moment = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        stamps.append((moment.timestamp(), line[len("[bench 00:00:00] ") :].startswith("scale ")))
    return [(stamps[i - 1][0], when) for i, (when, is_batch) in enumerate(stamps) if is_batch and i]


def _foreign_starts(path: Path) -> dict[str, float]:
    """{container name: start} from lines `NAME CREATED STARTED` (docker inspect) of other
    people's containers noted while the benchmark ran; empty if there is no such file."""
    if not path.is_file():
        return {}
    starts = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and (when := _when(parts[2] + " x")) is not None:
            starts[parts[0].lstrip("/")] = when
    return starts


def annotate(scale_json: Path, log_dir: Path, bench_log: Path, day: str) -> None:
    """Add `log_errors` to each batch of a saved scale.json from saved logs."""
    logs = {service: (log_dir / f"{service}.log").read_text() for service in PATTERNS}
    scale = json.loads(scale_json.read_text())
    windows = bench_log_windows(bench_log.read_text(), day)
    foreign = _foreign_starts(log_dir / "foreign-containers.txt")
    for batch, window in zip(scale["batches"], windows, strict=True):
        batch.setdefault("window", list(window))
        batch["log_errors"] = errors(logs, *batch["window"])
        if "foreign_containers" not in batch:
            batch["foreign_containers"] = sorted(
                name for name, started in foreign.items() if started < batch["window"][1]
            )
    scale["stack_log_errors_total"] = errors(logs, 0.0, float("inf"))
    scale["log_errors_source"] = (
        "counted afterwards in the services' logs saved before `down -v`; batch windows "
        "from the benchmark's own log lines (to the second)"
    )
    scale_json.write_text(json.dumps(scale, indent=1))


# ---------------------------------------------------------------- a lost scale.json

_BATCH_LINE = re.compile(
    r"^scale (?P<option>\w) N=(?P<n>\d+) limit (?P<limit>\d+): (?P<tput>[\d.]+) runs/min, "
    r"latency median (?P<lat>[\d.]+)s, max running (?P<running>\d+), failures "
    r"(?P<failures>\d+), machine CPU busy (?P<busy>\d+)%"
)
_FAILED_RUN = re.compile(
    r"Flow run '([^']+)' - Finished in state (Failed|Crashed)\(['\"]?(.{0,160})"
)
_CRASH_REPORT = re.compile(r"Reported flow run '([^']+)' as crashed: (.{0,160})")


def compose_logs(text: str) -> dict[str, str]:
    """`docker compose logs --timestamps` output split by service, in `docker logs` form."""
    services: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition("| ")
        if sep:
            services.setdefault(name.strip().rsplit("-", 1)[0], []).append(rest)
    return {name: "\n".join(lines) for name, lines in services.items()}


def failed_runs(worker_log: str, since: float, until: float) -> list[str]:
    """Runs the worker's log (which carries the flow containers' output) saw end badly."""
    found = []
    for line in worker_log.splitlines():
        when = _when(line)
        if when is None or not since <= when <= until:
            continue
        for pattern in (_FAILED_RUN, _CRASH_REPORT):
            match = pattern.search(line)
            if match:
                message = " ".join(match.groups()[1:]).rstrip("')\" ")
                found.append(f"{match.group(1)}: {message}")
    return found


def reconstruct(
    out: Path, bench_log: Path, compose_log: Path, day: str, foreign_file: Path | None = None
) -> None:
    """Rebuild scale.json from the benchmark's own log lines when the section broke off
    (the code of that run kept batches in memory only). What those lines do not carry
    (memory, CPU per component, latency spread) is left out, and says so."""
    text = bench_log.read_text()
    logs = compose_logs(compose_log.read_text())
    windows = bench_log_windows(text, day)
    lines = [
        line[len("[bench 00:00:00] ") :] for line in text.splitlines() if line.startswith("[bench ")
    ]
    matches = [m for line in lines if (m := _BATCH_LINE.match(line))]
    failed = [line for line in lines if line.startswith("scale: FAILED: ")]
    foreign = _foreign_starts(foreign_file) if foreign_file else {}
    batches = []
    for match, window in zip(matches, windows, strict=True):
        n = int(match["n"])
        bad = failed_runs(logs.get("worker", ""), *window)
        batches.append(
            {
                "option": match["option"],
                "n": n,
                "concurrency_limit": int(match["limit"]),
                "throughput_per_min": float(match["tput"]),
                "latency_s": {
                    "n": 1,
                    "median": float(match["lat"]),
                    "min": float(match["lat"]),
                    "max": float(match["lat"]),
                    "values": [float(match["lat"])],
                },
                "max_concurrent": int(match["running"]),
                "machine_busy": int(match["busy"]) / 100,
                "failures": bad
                if len(bad) == int(match["failures"])
                else [
                    f"(run {i + 1} of {match['failures']} failed)"
                    for i in range(int(match["failures"]))
                ],
                "cpu_s": {},
                "window": list(window),
                "log_errors": errors(logs, *window),
                "foreign_containers": sorted(
                    name for name, started in foreign.items() if started < window[1]
                ),
            }
        )
        for name in (
            "queue_wait_s",
            "flow_run_s",
            "peak_working_set_mb",
            "peak_rss_mb",
            "peak_cgroup_mb",
        ):
            batches[-1][name] = {"n": 0, "median": None, "min": None, "max": None, "values": []}
    plan = json.loads((out / "plan.json").read_text())
    scale = {
        "sizes": plan["scale_sizes"],
        "options": plan["scale_options"],
        "repeats": plan["scale_repeats"],
        "worker": plan["scale_worker"],
        "concurrency_limit": max(plan["scale_sizes"]) * 2,
        "shipped_n": plan.get("scale_shipped_n"),
        "batches": batches,
        "reconstructed": (
            "the section broke off, and the code of that run kept its batches in memory only: "
            "rebuilt from the benchmark's own log line per batch (throughput, the batch's "
            "median latency, most runs at once, failures, machine CPU) and the stack's logs "
            "(`bench/out/full/stack-logs.txt`: failed runs, error lines). Memory per "
            "container and CPU per component were not kept."
        ),
        "stack_log_errors_total": errors(logs, 0.0, float("inf")),
        "log_errors_source": "counted in the stack's logs over each batch's window",
    }
    if failed:
        scale["aborted"] = failed[0][len("scale: FAILED: ") :]
        last_end = windows[-1][1] if windows else 0.0
        scale["aborted_failures"] = failed_runs(logs.get("worker", ""), last_end, float("inf"))
    (out / "scale.json").write_text(json.dumps(scale, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "reconstruct":  # OUT_DIR BENCH_LOG COMPOSE_LOG YYYY-MM-DD [FOREIGN]
        foreign_file = Path(sys.argv[6]) if len(sys.argv) > 6 else None
        reconstruct(
            Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5], foreign_file
        )
    else:  # SCALE_JSON LOG_DIR BENCH_LOG YYYY-MM-DD
        annotate(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
