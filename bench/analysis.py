"""The "what bounds it" paragraphs of the report, written from the measured numbers."""

from __future__ import annotations

from typing import Any

from bench.stats import ratio


def _n(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _part(profile: dict[str, Any], prefix: str) -> float:
    return sum(v for k, v in profile["parts"].items() if k.startswith(prefix))


def _heartbeat(profile: dict[str, Any]) -> str:
    """Prefect joins its heartbeat thread at the end of a run; the thread sleeps in 1 s steps."""
    for part in profile.get("engine_parts", []):
        if part["part"].startswith("heartbeat") and part["cumulative_s"] >= 0.1:
            return (
                f", of which {part['cumulative_s']:.2f} s is waiting for Prefect's heartbeat "
                "thread to stop at the end of the run (it sleeps in 1 s steps: up to 1 s per "
                "run, `prefect/flow_engine.py:_send_heartbeats`)"
            )
    return ""


def local_noop(r: dict[str, Any]) -> list[str]:
    local = r.get("local")
    if not local or "noop" not in local:
        return []
    noop = local["noop"]
    dvc = noop["dvc"]["median"]
    b_cli = noop["b_cli"]["median"]
    a_in, b_in = noop["a_inproc"]["median"], noop["b_inproc"]["median"]
    prof = local.get("profile", {})
    lines = []
    pa, pb = prof.get("a"), prof.get("b")
    a_ratio = ratio(noop["a_cli"], noop["dvc"])
    in_ratio = ratio(noop["a_inproc"], noop["dvc"]) or 0.0
    if a_ratio is not None and a_ratio > 1.5 and pa:
        fixed = pa["total_s"] - _part(pa, "dvc repro")
        lines.append(
            f"- **Option A no-op ({a_ratio:.1f}x bare `dvc repro` as a new process).** The "
            f"`dvc repro` inside the task takes about as long as bare DVC "
            f"({_n(_part(pa, 'dvc repro'), 2)} s of {_n(pa['total_s'], 2)} s), so the gap is a "
            f"fixed cost per process of {_n(fixed, 1)} s: interpreter start and exit "
            f"{_n(_part(pa, 'interpreter'), 2)} s, imports "
            f"{_n(_part(pa, 'top-level imports') + _part(pa, 'imports during'), 2)} s (Prefect "
            f"and what it pulls in), Prefect's engine and API round trips "
            f"{_n(_part(pa, 'Prefect engine'), 2)} s{_heartbeat(pa)}. Against a {_n(dvc, 2)} s "
            "no-op that fixed "
            "cost cannot fit in 1.5x. In a warm process, where only the flow call is paid, "
            f"option A is {_n(a_in, 2)} s = {in_ratio:.2f}x "
            + (
                "(target met there): the overhead is process start-up, not orchestration. "
                if in_ratio <= 1.5
                else "(still above 1.5x: the engine's own per-run work, API round trips and "
                "the heartbeat join, is more than half a bare no-op). "
            )
            + "What "
            "would change it: run flows in a long-lived process that has already imported "
            "Prefect (a process worker or `flow.serve()` instead of one container per run), or "
            "make Prefect's import lighter (it imports its server-side models and clients "
            "eagerly); for DVC-only no-ops, check `dvc status` before starting a flow at all."
        )
    b_faster = b_cli < dvc
    if not b_faster and pb:
        startup = sum(_part(pb, p) for p in ("interpreter", "top-level imports", "imports during"))
        warm = (
            "faster than"
            if b_in < dvc
            else "about as fast as"
            if b_in < 1.1 * dvc
            else "slower than"
        )
        lines.append(
            f"- **Option B no-op ({_n(b_cli, 2)} s as a new process, {_n(b_in, 2)} s in a warm "
            f"process, vs {_n(dvc, 2)} s for `dvc repro`).** Option B's own work for a no-op is "
            f"small: cache keys {_n(_part(pb, 'cache keys'), 2)} s, opening the DVC repo "
            f"{_n(_part(pb, 'DVC repo open'), 2)} s, checking outputs "
            f"{_n(_part(pb, 'checking'), 2)} s. What it cannot skip is a new interpreter with "
            f"Prefect, DVC and scikit-learn imported "
            f"({_n(startup, 1)} s) "
            f"and Prefect's per-run API work ({_n(_part(pb, 'Prefect engine'), 2)} s: a flow "
            "run, three task runs with their states, an artifact), which together outweigh "
            "DVC's whole no-op. "
            + (f"In a warm process it is {warm} bare `dvc repro`. " if b_in is not None else "")
            + "What would change it: a long-lived flow process (imports paid once), and fewer "
            "API round trips per cached stage (e.g. one task for the whole cached prefix of "
            "the DAG, or checking the cache keys before creating task runs)."
        )
    elif pb:
        lines.append(f"- Option B no-op: {_n(b_cli, 2)} s vs {_n(dvc, 2)} s for `dvc repro`: met.")
    return lines


def latency(r: dict[str, Any]) -> list[str]:
    lat = (r.get("latency") or {}).get("results", {})
    tuned = lat.get("tuned") or {}
    lines = []
    for option in ("a", "b"):
        cell = tuned.get(f"{option}_warm")
        if not cell or cell["total"]["median"] is None:
            continue
        total = cell["total"]["median"]
        phases = {
            p: (cell[p]["median"] or 0.0)
            for p in ("queue_wait", "submit", "container_start", "flow_run")
        }
        if total < 10:
            lines.append(
                f"- Warm option {option.upper()} with 1 s polling: {_n(total)} s < 10 s: met."
            )
            continue
        worst = max(phases, key=phases.get)  # type: ignore[arg-type]
        lines.append(
            f"- **Warm option {option.upper()} ({_n(total)} s with 1 s polling).** Queue wait "
            f"{_n(phases['queue_wait'])} s, submit {_n(phases['submit'])} s, container start "
            f"{_n(phases['container_start'])} s, flow run {_n(phases['flow_run'])} s: the "
            f"largest part is the {worst.replace('_', ' ')}. Polling is no longer the bound once "
            "tuned; a new container pays a Python interpreter importing Prefect and the flow "
            "module (DVC, and for option B scikit-learn) before the run reports Running, and "
            "the flow then pulls its inputs from the remote and pushes its results back"
            + (
                " (option A runs `dvc repro --pull` and then `dvc push --run-cache`: two more "
                "interpreters importing DVC)"
                if option == "a"
                else ""
            )
            + ". What would change it: a warm flow process (a process worker inside one "
            "long-lived container, or `flow.serve()`) removes container and import start-up; "
            "lazier imports in the flow modules shorten the start; for option A, one DVC "
            "invocation instead of two."
        )
    return lines


def image(r: dict[str, Any]) -> list[str]:
    i = r.get("image")
    if not i or "size_bytes" not in i:
        return []
    lines = []
    mb = i["size_bytes"] / 1e6
    if mb >= 700:
        venv = i.get("venv", {})
        big = ", ".join(
            f"{p['package']} {p['bytes'] / 1e6:.0f} MB" for p in venv.get("largest", [])[:8]
        )
        lines.append(
            f"- **Image {mb:.0f} MB (target < 700 MB).** The base is "
            f"{i['base_size_bytes'] / 1e6:.0f} MB; the venv "
            f"{venv.get('venv_bytes', 0) / 1e6:.0f} MB on disk, largest: {big}. It is one "
            "image for server, worker and flow runs, so it "
            "carries Prefect's server (SQLAlchemy, its UI bundle) and both DVC remotes (S3 and "
            "GCS with gRPC) besides the scientific stack. What would change it: a flow-run "
            "image without the server's parts and only the remote in use (`dvc[s3]` without "
            "`gs`), which removes "
            "the server's and GCS's dependencies from the image flow runs start"
            + (
                f". The venv's byte-code is {venv['pycache_bytes'] / 1e6:.0f} MB: without it the "
                "image would pass, but every flow container would compile what it imports at "
                "each start (the venv is read-only for the non-root user), lengthening the "
                "container start of section 2 (not measured here); it should stay"
                if venv.get("pycache_bytes")
                else ""
            )
            + "."
        )
    rebuild = (i.get("code_only_rebuild_s") or {}).get("median")
    if rebuild is not None and rebuild >= 20:
        lines.append(
            f"- **Code-only rebuild {rebuild:.1f} s (target < 20 s).** Only the layers after "
            "`COPY mltoy/` should rebuild; see the build log for which did."
        )
    return lines


def _failure_kinds(failures: list[str]) -> str:
    server = sum(1 for f in failures if "Server error '50" in f)
    crashed = sum(1 for f in failures if "Crashed" in f)
    other = len(failures) - server - crashed
    parts = [
        f"{server} ended on a 500/503 answer from the Prefect server" if server else "",
        f"{crashed} was marked Crashed while it ran" if crashed else "",
        f"{other} other (e.g. the flow process exited 1)" if other else "",
    ]
    return ", ".join(part for part in parts if part)


def scale(r: dict[str, Any]) -> list[str]:
    from bench.report import scale_groups

    s = r.get("scale")
    if not s or "batches" not in s:
        return []
    groups = scale_groups(s["batches"])
    lines = []
    failures = [f for g in groups for f in g["failures"]]
    if failures:
        lines.append(
            f"- **{len(failures)} failed run(s)** (listed in section 5): {_failure_kinds(failures)}"
            + (
                "; and the server refused the benchmark's next batch (503)."
                if s.get("aborted")
                else "."
            )
        )
    open_groups = [g for g in groups if g["limit"] != 1]
    biggest = max((g["n"] for g in open_groups), default=None)
    best = max(open_groups, key=lambda g: g["throughput"]["median"] or 0.0, default=None)
    explained = False
    for g in (g for g in open_groups if g["n"] == biggest):
        cpu = g["cpu_s"]
        busy = g["busy"]["median"] or 0.0
        errors = g.get("log_errors") or {}
        locked, stalled = errors.get("database_locked", 0), errors.get("worker_not_polled", 0)
        dropped, late = errors.get("events_dropped", 0), errors.get("late_crash_attempts", 0)
        per_run = cpu.get("flow containers", 0.0) / max(g["runs"], 1)
        usage = f"both cores {busy:.0%} busy" + (
            f"; CPU time over the {g['repeats']} batch(es): flow "
            f"containers {cpu.get('flow containers', 0.0):.0f} s ({per_run:.1f} s per run), "
            f"Prefect server {cpu.get('prefect-server', 0.0):.0f} s"
            + (f", its PostgreSQL {cpu['postgres']:.0f} s" if "postgres" in cpu else "")
            + f", worker "
            f"{cpu.get('worker', 0.0):.0f} s, S3 {cpu.get('s3', 0.0):.0f} s"
            if cpu
            else ""
        )
        noisy = " (other containers ran during it)" if g.get("foreign") else ""
        head = (
            f"- **Scale, option {g['option'].upper()} at N = {g['n']}: "
            f"{g['throughput']['median']:.1f} runs/min, latency median "
            f"{g['latency']['median']:.0f} s{noisy}.**"
        )
        counts = (
            f"the server logged `database is locked` {locked} times, gave up storing events "
            f"{dropped} times and saw {late} attempts to crash runs that had already ended; "
            f"the worker logged {stalled} times that it had not polled its pool for 30 s or more"
        )
        if (locked or stalled) and explained:
            lines.append(f"{head} The same bound ({usage}): {counts}.")
        elif locked or stalled:
            explained = True
            lines.append(
                f"{head} Not bound by the cores ({usage}): {counts}. With 16 flow runs writing "
                "states, logs (option A streams every DVC output line), events and heartbeats "
                "at once, SQLite's single writer serialises the Prefect API: flow runs wait on "
                "it (for minutes between their last task and Completed), the worker's loop "
                "waits behind them (its health check fails), some requests end in 500/503, and "
                "events the server cannot store are dropped, so the zombie-run automation "
                "(90 s without a heartbeat -> Crashed, deploy/automations.py) fires on runs "
                "whose heartbeats were lost (the late crash attempts above; whether it also "
                "hit a live run was not recorded). This is SQLite's known limit "
                "under concurrent writes (PrefectHQ/prefect#10188). What would change it: "
                "PostgreSQL as the server's database (a compose service; Prefect's "
                "recommendation beyond light use), and a work-pool or deployment concurrency "
                "limit near what the cores can run"
                + (
                    f" (here N = {best['n']} gave the best throughput, "
                    f"{best['throughput']['median']:.1f} runs/min with option "
                    f"{best['option'].upper()})"
                    if best
                    else ""
                )
                + ", so surplus runs wait in the queue instead of in the database."
            )
        else:
            share = g["stack_share"] or 0.0
            verdict = "the cores" if busy >= 0.85 and share < 0.25 else "not the cores"
            lines.append(
                f"{head} {usage[0].upper()}{usage[1:]}: the bound is {verdict}. A flow "
                "container spends its CPU mostly starting a Python process that imports "
                "Prefect, DVC and scikit-learn (section 1) before a few seconds of pipeline "
                "work, so on 2 cores more throughput would come from fewer, longer-lived flow "
                "processes, not from the server or the worker."
            )
    for g in (g for g in groups if g["limit"] == 1):
        lines.append(
            f"- As shipped (`concurrency_limit: 1`), {g['n']} runs of option "
            f"{g['option'].upper()} submitted together run one after the other: "
            f"{g['throughput']['median']:.1f} runs/min with the cores "
            f"{g['busy']['median'] or 0:.0%} busy, latency up to {g['latency']['max']:.0f} s. "
            "That limit, not the machine, bounds a burst of runs of one deployment."
        )
    return lines


def explain(r: dict[str, Any], k: dict[str, Any]) -> list[str]:
    lines = local_noop(r) + latency(r) + image(r) + scale(r)
    return (lines or ["Every measured target was met."]) + [""]
