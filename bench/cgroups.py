"""Memory and CPU of containers, read from their cgroups while they run.

Flow containers are removed when they exit (`auto_remove`), so their numbers are sampled
while they live: the cgroup's own peak (`memory.max_usage_in_bytes` / `memory.peak`,
page cache included), the peak of what `docker stats` shows (usage minus inactive file
cache) and of anonymous memory (RSS), and CPU time. Machine-wide CPU comes from
/proc/stat.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(path: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}
    except (OSError, ValueError):
        return {}


def read_container(container_id: str) -> dict[str, float] | None:
    """{peak, working_set, rss, cpu_s} of a running container, or None if gone."""
    v1_mem, v1_cpu = ROOT / "memory/docker" / container_id, ROOT / "cpuacct/docker" / container_id
    if v1_mem.is_dir():
        stat = _stat(v1_mem / "memory.stat")
        usage = _read_int(v1_mem / "memory.usage_in_bytes")
        peak = _read_int(v1_mem / "memory.max_usage_in_bytes")
        cpu = _read_int(v1_cpu / "cpuacct.usage")
        if usage is None:
            return None
        return {
            "peak": float(peak or usage),
            "working_set": float(usage - stat.get("total_inactive_file", 0)),
            "rss": float(stat.get("total_rss", 0)),
            "cpu_s": (cpu or 0) / 1e9,
        }
    for v2 in (ROOT / f"system.slice/docker-{container_id}.scope", ROOT / "docker" / container_id):
        if v2.is_dir():
            stat = _stat(v2 / "memory.stat")
            usage = _read_int(v2 / "memory.current")
            if usage is None:
                return None
            return {
                "peak": float(_read_int(v2 / "memory.peak") or usage),
                "working_set": float(usage - stat.get("inactive_file", 0)),
                "rss": float(stat.get("anon", 0)),
                "cpu_s": _stat(v2 / "cpu.stat").get("usage_usec", 0) / 1e6,
            }
    return None


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies summed over all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return float(total - idle), float(total)


def _containers(label: str, key: str) -> dict[str, str]:
    out = subprocess.run(
        [
            "docker",
            "ps",
            "--no-trunc",
            "--filter",
            f"label={label}",
            "--format",
            f'{{{{.ID}}}} {{{{.Label "{key}"}}}}',
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _foreign(project: str, pool: str) -> set[str]:
    """Names of running containers that are neither our stack's nor our flow runs'."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "--format",
            '{{.Names}}|{{.Label "com.docker.compose.project"}}|'
            '{{.Label "io.prefect.work-pool-name"}}',
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    names = set()
    for line in out.splitlines():
        name, owner, owner_pool = (line.split("|") + ["", ""])[:3]
        if owner != project and owner_pool != pool:
            names.add(name)
    return names


class Sampler:
    """Samples flow containers of a pool and the services of a compose project."""

    def __init__(self, pool: str, project: str, interval: float = 0.5) -> None:
        self.pool, self.project, self.interval = pool, project, interval
        self.flows: dict[str, dict[str, float]] = {}  # flow run id -> maxima / last cpu
        self.services: dict[str, dict[str, float]] = {}
        self._ids: dict[str, str] = {}  # container id -> "flow:<run id>" | "svc:<name>"
        self.foreign: set[str] = set()  # other containers seen running: noise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        for cid, service in _containers(
            f"com.docker.compose.project={self.project}", "com.docker.compose.service"
        ).items():
            self._ids[cid] = f"svc:{service}"
        self._service_start = {
            self._ids[cid][4:]: (read_container(cid) or {}).get("cpu_s", 0.0) for cid in self._ids
        }
        self._cpu0, self._t0 = machine_cpu(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        (busy1, total1), (busy0, total0) = machine_cpu(), self._cpu0
        self.wall_s = time.monotonic() - self._t0
        self.machine_busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else None
        for name, start in self._service_start.items():
            entry = self.services.setdefault(name, {})
            entry["cpu_s"] = entry.get("cpu_last", start) - start

    def _loop(self) -> None:
        last_listing = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_listing > 1.0:
                for cid, run_id in _containers(
                    f"io.prefect.work-pool-name={self.pool}", "io.prefect.flow-run-id"
                ).items():
                    self._ids.setdefault(cid, f"flow:{run_id}")
                self.foreign |= _foreign(self.project, self.pool)
                last_listing = time.monotonic()
            for cid, name in list(self._ids.items()):
                sample = read_container(cid)
                if sample is None:
                    continue
                kind, key = name.split(":", 1)
                entry = (self.flows if kind == "flow" else self.services).setdefault(key, {})
                for metric in ("peak", "working_set", "rss"):
                    entry[metric] = max(entry.get(metric, 0.0), sample[metric])
                entry["cpu_last"] = sample["cpu_s"]
            self._stop.wait(self.interval)
