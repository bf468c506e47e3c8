"""Memory and CPU of containers, read from their cgroups while they run.

Flow containers are removed when they exit (`auto_remove`), so their numbers are sampled
while they live, every 0.5 s: the cgroup's own peak (`memory.max_usage_in_bytes` /
`memory.peak`, page cache included), the peak of what `docker stats` shows (usage minus
inactive file cache) and of anonymous memory (RSS), and CPU time. The cgroup files are
read directly: asking the Docker API for stats of a dozen containers twice a second would
load the very cores being measured. Machine-wide CPU comes from psutil.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> dict[str, int]:
    """A cgroup file as {key: value}; a single-number file as {"": value}."""
    try:
        lines = [line.split() for line in path.read_text().splitlines()]
    except OSError:
        return {}
    return {(line[0] if len(line) > 1 else ""): int(line[-1]) for line in lines if line}


def read_container(container_id: str) -> dict[str, float] | None:
    """{peak, working_set, rss, cpu_s} of a running container, or None if gone."""
    v1 = ROOT / "memory/docker" / container_id
    if v1.is_dir():  # cgroup v1
        usage, stat = _read(v1 / "memory.usage_in_bytes").get(""), _read(v1 / "memory.stat")
        peak = _read(v1 / "memory.max_usage_in_bytes").get("")
        cpu_s = _read(ROOT / "cpuacct/docker" / container_id / "cpuacct.usage").get("", 0) / 1e9
        inactive, anon = stat.get("total_inactive_file", 0), stat.get("total_rss", 0)
    else:  # cgroup v2, systemd or cgroupfs driver
        v2 = ROOT / f"system.slice/docker-{container_id}.scope"
        v2 = v2 if v2.is_dir() else ROOT / "docker" / container_id
        usage, stat = _read(v2 / "memory.current").get(""), _read(v2 / "memory.stat")
        peak = _read(v2 / "memory.peak").get("")
        cpu_s = _read(v2 / "cpu.stat").get("usage_usec", 0) / 1e6
        inactive, anon = stat.get("inactive_file", 0), stat.get("anon", 0)
    if usage is None:
        return None
    return {
        "peak": float(peak or usage),
        "working_set": float(usage - inactive),
        "rss": float(anon),
        "cpu_s": cpu_s,
    }


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds summed over all cores since boot."""
    times = psutil.cpu_times()
    total = sum(times[:8])  # user .. steal; guest time is already in user
    return total - times.idle - times.iowait, total


class Sampler:
    """Samples flow containers of a pool and the services of a compose project."""

    def __init__(self, pool: str, project: str, interval: float = 0.5) -> None:
        import docker

        self.engine = docker.from_env().api
        self.pool, self.project, self.interval = pool, project, interval
        self.flows: dict[str, dict[str, float]] = {}  # flow run id -> maxima / last cpu
        self.services: dict[str, dict[str, float]] = {}
        self._ids: dict[str, str] = {}  # container id -> "flow:<run id>" | "svc:<name>"
        self.foreign: set[str] = set()  # other containers seen running: noise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _running(self) -> list[dict]:
        return self.engine.containers()  # `docker ps`: id, names and labels

    def __enter__(self) -> Sampler:
        for c in self._running():
            if c["Labels"].get("com.docker.compose.project") == self.project:
                self._ids[c["Id"]] = f"svc:{c['Labels']['com.docker.compose.service']}"
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

    def _list(self) -> None:
        """Our pool's new flow containers, and anything running that is not ours."""
        for c in self._running():
            labels = c["Labels"]
            if labels.get("io.prefect.work-pool-name") == self.pool:
                self._ids.setdefault(c["Id"], f"flow:{labels.get('io.prefect.flow-run-id')}")
            elif labels.get("com.docker.compose.project") != self.project:
                self.foreign.add(c["Names"][0].lstrip("/"))

    def _loop(self) -> None:
        last_listing = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_listing > 1.0:
                self._list()
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
