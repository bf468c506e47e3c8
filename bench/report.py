"""Render docs/benchmarks.md and its PNG from the JSON results alone (no measuring)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.png import Bar, Panel, bar_chart
from bench.stats import ratio, summarize
from bench.timeline import PHASES

LABELS = {
    "dvc": "bare `dvc repro`",
    "a_cli": "option A, `python -m flows.cli a`",
    "b_cli": "option B, `python -m flows.cli b`",
    "a_inproc": "option A, `pipeline_a()` in a warm process",
    "b_inproc": "option B, `pipeline_b()` in a warm process",
}
SHORT = {
    "dvc": "DVC REPRO",
    "a_cli": "A CLI",
    "b_cli": "B CLI",
    "a_inproc": "A IN-PROCESS",
    "b_inproc": "B IN-PROCESS",
}
PHASE_NAMES = {
    "queue_wait": "queue wait",
    "submit": "submit",
    "container_start": "container start",
    "flow_run": "flow run",
}
TARGETS = {"a_noop_ratio": 1.5, "warm_s": 10.0, "image_mb": 700.0, "rebuild_s": 20.0}


def load(out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for path in sorted(out.glob("*.json")):
        results[path.stem] = json.loads(path.read_text())
    return results


# ---------------------------------------------------------------- formatting


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def span(summary: dict | None, unit: str = "s", digits: int = 2) -> str:
    """ "1.03 s [0.98–1.10]" (median [min–max]); "(n=1)" when there is one value."""
    if not summary or summary.get("median") is None:
        return "n/a"
    median = f"{summary['median']:.{digits}f}{' ' + unit if unit else ''}"
    if summary["n"] == 1:
        return f"{median} (n=1)"
    return f"{median} [{summary['min']:.{digits}f}–{summary['max']:.{digits}f}]"


def pct(summary: dict | None) -> str:
    if not summary or summary.get("median") is None:
        return "n/a"
    if summary["n"] == 1:
        return f"{summary['median']:.0%} (n=1)"
    return f"{summary['median']:.0%} [{summary['min']:.0%}–{summary['max']:.0%}]"


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def missing(results: dict[str, Any], name: str) -> list[str] | None:
    """Lines saying why a section has no numbers, or None if it has."""
    error = results.get(f"{name}-error") or (results.get(name) or {}).get("error")
    if error:
        message = error["error"] if isinstance(error, dict) else error
        return [f"**Not measured: the section failed** (`{message}`).", ""]
    if name not in results:
        return ["**Not measured in this run.**", ""]
    return None


# ---------------------------------------------------------------- key numbers


def key_numbers(r: dict[str, Any]) -> dict[str, Any]:
    """The values the targets and the chart are about (None where not measured)."""
    k: dict[str, Any] = {}
    local = r.get("local") or {}
    noop, full = local.get("noop", {}), local.get("full", {})
    for variant in ("a_cli", "b_cli", "a_inproc", "b_inproc"):
        k[f"{variant}_noop_ratio"] = ratio(noop.get(variant), noop.get("dvc"))
        k[f"{variant}_full_ratio"] = ratio(full.get(variant), full.get("dvc"))
    latency = (r.get("latency") or {}).get("results", {})
    for worker, runs in latency.items():
        for key, value in runs.items():
            if key != "runs":
                k[f"{key}_{worker}"] = value["total"].get("median")
    image = r.get("image") or {}
    k["image_mb"] = image["size_bytes"] / 1e6 if image.get("size_bytes") else None
    k["rebuild_s"] = (image.get("code_only_rebuild_s") or {}).get("median")
    groups = scale_groups((r.get("scale") or {}).get("batches", []))
    biggest = max((g["n"] for g in groups), default=None)
    k["scale_n"] = biggest
    k["scale_failures"] = sum(len(g["failures"]) for g in groups) if groups else None
    k["scale_runs"] = sum(g["runs"] for g in groups) if groups else None
    top = [g for g in groups if g["n"] == biggest and g["limit"] != 1]
    k["scale_busy"] = min((g["busy"]["median"] for g in top if g["busy"]["median"]), default=None)
    k["scale_stack_share"] = max(
        (g["stack_share"] for g in top if g["stack_share"] is not None), default=None
    )
    k["scale_log_errors"] = _add_counts(g.get("log_errors") for g in top)
    k["scale_top_failures"] = sum(len(g["failures"]) for g in top) if top else None
    k["scale_top_runs"] = sum(g["runs"] for g in top) if top else None
    return k


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def targets(r: dict[str, Any], k: dict[str, Any]) -> list[str]:
    local = r.get("local") or {}
    noop = local.get("noop", {})
    dvc = (noop.get("dvc") or {}).get("median")
    a_cli, b_cli = (noop.get("a_cli") or {}).get("median"), (noop.get("b_cli") or {}).get("median")
    b_in = (noop.get("b_inproc") or {}).get("median")
    rows = []
    ratio_a = k.get("a_cli_noop_ratio")
    rows.append(
        [
            "Option A no-op within 1.5x of bare `dvc repro`",
            f"{times(ratio_a)} as a new process ({num(a_cli)} s vs {num(dvc)} s); "
            f"{times(k.get('a_inproc_noop_ratio'))} in a warm process",
            _verdict(None if ratio_a is None else ratio_a <= TARGETS["a_noop_ratio"])
            + (
                " (met in a warm process)"
                if ratio_a is not None
                and ratio_a > TARGETS["a_noop_ratio"]
                and (k.get("a_inproc_noop_ratio") or 99) <= TARGETS["a_noop_ratio"]
                else ""
            ),
        ]
    )
    b_ok = None if b_cli is None or dvc is None else b_cli < dvc
    rows.append(
        [
            "Option B no-op (all cached) faster than bare `dvc repro`",
            f"{num(b_cli)} s as a new process ({times(k.get('b_cli_noop_ratio'))}); "
            f"{num(b_in)} s in a warm process ({times(k.get('b_inproc_noop_ratio'))})",
            _verdict(b_ok),
        ]
    )
    warm = {o: k.get(f"{o}_warm_tuned") for o in "ab"}
    warm_default = {o: k.get(f"{o}_warm_default") for o in "ab"}
    warm_ok = None if None in warm.values() else max(warm.values()) < TARGETS["warm_s"]
    rows.append(
        [
            "Warm containerized run, trigger -> Completed < 10 s (worker polling tuned)",
            f"A {num(warm['a'], 1)} s, B {num(warm['b'], 1)} s with 1 s polling "
            f"(shipped 5 s polling: A {num(warm_default['a'], 1)} s, "
            f"B {num(warm_default['b'], 1)} s)",
            _verdict(warm_ok),
        ]
    )
    image_mb = k.get("image_mb")
    rows.append(
        [
            "Image < 700 MB",
            f"{num(image_mb, 0)} MB",
            _verdict(None if image_mb is None else image_mb < TARGETS["image_mb"]),
        ]
    )
    rebuild = k.get("rebuild_s")
    rows.append(
        [
            "Code-only rebuild < 20 s",
            f"{num(rebuild, 1)} s",
            _verdict(None if rebuild is None else rebuild < TARGETS["rebuild_s"]),
        ]
    )
    failures, runs, n = k.get("scale_failures"), k.get("scale_runs"), k.get("scale_n")
    rows.append(
        [
            f"Zero failed runs at N = {n or 16}",
            "n/a"
            if failures is None
            else f"{k['scale_top_failures']} failed of {k['scale_top_runs']} runs at N = {n} "
            f"(A and B; {failures} of {runs} over all batches)"
            + (
                "; then the server refused the next batch (503) and the section broke off"
                if (r.get("scale") or {}).get("aborted")
                else ""
            ),
            _verdict(
                None
                if failures is None or n != 16
                else k["scale_top_failures"] == 0 and not (r.get("scale") or {}).get("aborted")
            ),
        ]
    )
    busy, server_share = k.get("scale_busy"), k.get("scale_stack_share")
    errors = k.get("scale_log_errors") or {}
    trouble = errors.get("database_locked", 0) + errors.get("worker_not_polled", 0)
    rows.append(
        [
            "Throughput limited by the 2 cores, not by the server or worker",
            "n/a"
            if busy is None
            else (
                f"machine CPU {busy:.0%} busy during N = {n}"
                + (
                    f"; Prefect server (with its database) + worker used {server_share:.0%} "
                    "of the CPU time"
                    if server_share is not None
                    else ""
                )
                + (
                    f"; the server logged `database is locked` "
                    f"{errors.get('database_locked', 0)} times, the worker 'not polled' "
                    f"{errors.get('worker_not_polled', 0)} times"
                    if trouble
                    else ""
                )
            ),
            _verdict(
                None
                if busy is None
                else busy >= 0.85 and (server_share or 0.0) < 0.25 and not trouble
            ),
        ]
    )
    return table(["target", "measured", ""], rows)


# ---------------------------------------------------------------- sections


def machine(r: dict[str, Any]) -> list[str]:
    m = r.get("machine") or {}
    plan, timing = r.get("plan") or {}, r.get("timing") or {}
    v = m.get("versions", {})
    others = m.get("other_containers_at_start") or []
    rows = [
        ["CPU", f"{m.get('cpu')}, {m.get('cores')} cores"],
        ["memory", f"{m.get('memory_gib')} GiB"],
        ["OS", f"{m.get('os')}, kernel {m.get('kernel')}"],
        [
            "Docker",
            f"engine {m.get('docker')}, compose {m.get('compose')}, {m.get('docker_storage')}",
        ],
        [
            "Python and packages",
            f"{m.get('python')}; " + ", ".join(f"{p} {x}" for p, x in v.items()),
        ],
        [
            "load at start",
            f"loadavg {', '.join(f'{x:.2f}' for x in m.get('loadavg_at_start', []))}; "
            f"other containers running: {', '.join(others) if others else 'none'}",
        ],
        [
            "run",
            f"{plan.get('mode')} mode, {m.get('when')}, "
            f"{num((timing.get('total_s') or 0) / 60, 0)} min in all",
        ],
    ]
    return table(["", ""], rows)


def section_local(r: dict[str, Any]) -> list[str]:
    lines = ["## 1. Local overhead", ""]
    gap = missing(r, "local")
    if gap:
        return lines + gap
    local = r["local"]
    lines += [
        f"Each variant in its own throw-away workspace, against one local Prefect server "
        f"started once for the section (no temporary server per run); k = {local['repeats']}, "
        "variants interleaved in a rotating order. *No-op*: everything up to date. *Full*: "
        "after a `train.C` change to a value no run used before (train and evaluate rerun, "
        "prepare is skipped). A *new process* pays interpreter start and imports, as a flow "
        "container or a user's shell does; the *warm process* numbers are the flow call alone "
        "after a warm-up run, i.e. the engine's own overhead.",
        "",
    ]
    rows = []
    for variant in ("dvc", "a_cli", "b_cli", "a_inproc", "b_inproc"):
        noop, full = local["noop"].get(variant), local["full"].get(variant)
        rows.append(
            [
                LABELS[variant],
                span(noop),
                times(ratio(noop, local["noop"].get("dvc"))),
                span(full),
                times(ratio(full, local["full"].get("dvc"))),
            ]
        )
    lines += table(["variant", "no-op", "÷ dvc repro", "full (train change)", "÷ dvc repro"], rows)
    for option, name in (("a", "A"), ("b", "B")):
        prof = local.get("profile", {}).get(option)
        if not prof:
            continue
        lines += [
            f"**Where a no-op option {name} run goes** (one new-process run, "
            f"{num(prof['total_s'])} s in all; cProfile over the flow call in "
            f"{prof['threads_profiled'] + 1} threads, wall-clock marks around it):",
            "",
        ]
        rows = [
            [part, num(seconds), f"{seconds / prof['total_s']:.0%}"]
            for part, seconds in prof["parts"].items()
        ]
        lines += table(["part", "s", "share"], rows)
        packages = ", ".join(f"{p['package']} {p['share']:.0%}" for p in prof["imports_by_package"])
        lines += [f"Import time by package (own time, `python -X importtime`): {packages}.", ""]
        parts = "; ".join(
            f"{t['part']} {num(t['cumulative_s'])} s" for t in prof.get("engine_parts", [])
        )
        lines += [
            f"Inside Prefect's engine (cumulative, main thread; parts may nest): {parts}.",
            "",
        ]
    return lines


def section_latency(r: dict[str, Any]) -> list[str]:
    lines = ["## 2. Containerized latency", ""]
    gap = missing(r, "latency")
    if gap:
        return lines + gap
    lat = r["latency"]
    lines += [
        "A run of each deployment triggered as the UI's *Quick run* does, on the Docker work "
        "pool, to Completed. *Cold*: the remote emptied first (only the raw data, which "
        "deploy seeds, stays), so every stage runs and pushes. *Warm*: the same run again, "
        "everything in the remote (a new container still pulls what it needs). Phases from "
        "the server's state history and Docker's container events: *queue wait* trigger -> "
        "Pending (the worker's polling), *submit* Pending -> container created, *container "
        "start* created -> Running (Docker start, interpreter, Prefect and flow imports), "
        "*flow run* Running -> Completed. Worker *shipped*: `PREFECT_WORKER_QUERY_SECONDS=5` "
        "(compose.yaml); *tuned*: 1 s (bench/compose.tuned.yaml). "
        f"k = {lat['repeats']} per cell.",
        "",
    ]
    rows = []
    for worker in lat["workers"]:
        for key in ("a_cold", "a_warm", "b_cold", "b_warm"):
            cell = lat["results"].get(worker, {}).get(key)
            if not cell:
                continue
            option, cache = key.split("_")
            rows.append(
                [
                    f"{option.upper()} {cache}",
                    "shipped (5 s)" if worker == "default" else "tuned (1 s)",
                    span(cell["total"], digits=1),
                    *(span(cell[p], unit="", digits=1) for p in PHASES),
                    str(len(cell["failures"])),
                ]
            )
    lines += table(["run", "worker", "trigger -> Completed", *PHASE_NAMES.values(), "failed"], rows)
    return lines


def section_coldstart(r: dict[str, Any]) -> list[str]:
    lines = ["## 3. Stack cold start", ""]
    gap = missing(r, "coldstart")
    if gap:
        return lines + gap
    c = r["coldstart"]
    lines += [
        "From `down -v` (no containers, no volumes; images built) to `up -d --wait` returning "
        "(every service healthy), then `wait deploy` (remote seeded, work pool and deployments "
        f"registered), then a first option {c['first_run_option'].upper()} run triggered at "
        f"once to Completed (a cold run: every stage runs). k = {c['repeats']}.",
        "",
    ]
    lines += table(
        ["step", "seconds from `up`"],
        [
            ["`up --wait`: all services healthy", span(c["up_healthy_s"], digits=1)],
            ["+ `wait deploy`: deployments registered", span(c["up_to_deployed_s"], digits=1)],
            ["+ first run Completed", span(c["up_to_first_completed_s"], digits=1)],
        ],
    )
    if c["failures"]:
        lines += [f"Failed first runs: {c['failures']}", ""]
    return lines


def section_image(r: dict[str, Any]) -> list[str]:
    lines = ["## 4. Image", ""]
    gap = missing(r, "image")
    if gap:
        return lines + gap
    i = r["image"]
    lines += [
        f"`{i['image']}` (docker/Dockerfile on `{i['base_image']}`): "
        f"**{i['size_bytes'] / 1e6:.0f} MB** "
        f"uncompressed, of which the base image is {i['base_size_bytes'] / 1e6:.0f} MB. "
        f"Rebuild on a copy of the build context with the same command as "
        f"scripts/e2e-prepare.sh: unchanged {num(i['unchanged_rebuild_s'], 1)} s ("
        + (
            "the same image: every layer from the cache"
            if i.get("unchanged_rebuild_is_same_image")
            else "a different image id than the stack's"
        )
        + "); after a code-only change (a comment appended to `mltoy/__init__.py`) "
        f"**{span(i['code_only_rebuild_s'], digits=1)}** (k = {i['repeats']}).",
        "",
        "Largest layers:",
        "",
    ]
    lines += table(
        ["MB", "step"],
        [
            [f"{layer['bytes'] / 1e6:.0f}", f"`{layer['step']}`"]
            for layer in i["largest_layers"]
            if layer["bytes"] >= 1e6
        ],
    )
    venv = i.get("venv")
    if venv:
        biggest = ", ".join(f"{p['package']} {p['bytes'] / 1e6:.0f}" for p in venv["largest"])
        lines += [
            f"The venv (`/opt/venv`, {venv['venv_bytes'] / 1e6:.0f} MB on disk, of which "
            f"{venv.get('pycache_bytes', 0) / 1e6:.0f} MB byte-code); largest entries of "
            f"site-packages, MB: {biggest}.",
            "",
        ]
    return lines


def _add_counts(counts: Any) -> dict[str, int] | None:
    """Sum of per-batch error counts; None when no batch counted them."""
    total: dict[str, int] | None = None
    for entry in counts:
        if entry is None:
            continue
        total = total or {}
        for name, value in entry.items():
            total[name] = total.get(name, 0) + value
    return total


def scale_groups(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The k repeats of each (option, N, concurrency limit), pooled."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for b in batches:
        groups.setdefault((b["option"], b["n"], b.get("concurrency_limit")), []).append(b)
    pooled = []
    for (option, n, limit), members in groups.items():
        cpu: dict[str, float] = {}
        for b in members:
            for name, seconds in b["cpu_s"].items():
                cpu[name] = cpu.get(name, 0.0) + seconds

        def values(key: str, members: list[dict[str, Any]] = members) -> list[float]:
            return [v for b in members for v in b[key]["values"]]

        pooled.append(
            {
                "option": option,
                "n": n,
                "limit": limit,
                "repeats": len(members),
                "throughput": summarize(b["throughput_per_min"] for b in members),
                "latency": summarize(values("latency_s")),
                "queue_wait": summarize(values("queue_wait_s")),
                "working_set": summarize(values("peak_working_set_mb")),
                "rss": summarize(values("peak_rss_mb")),
                "max_concurrent": max(b["max_concurrent"] for b in members),
                "busy": summarize(b["machine_busy"] for b in members),
                "cpu_s": cpu,
                "stack_share": (
                    cpu.get("prefect-server", 0.0)
                    + cpu.get("postgres", 0.0)
                    + cpu.get("worker", 0.0)
                )
                / sum(cpu.values())
                if cpu and sum(cpu.values())
                else None,
                "failures": [f for b in members for f in b["failures"]],
                "runs": sum(b["n"] for b in members),
                "log_errors": _add_counts(b.get("log_errors") for b in members),
                "foreign": sorted({c for b in members for c in b.get("foreign_containers", [])}),
                "foreign_batches": sum(1 for b in members if b.get("foreign_containers")),
            }
        )
    return pooled


def _log_errors(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "n/a"
    return f"{counts.get('database_locked', 0)} / {counts.get('worker_not_polled', 0)}"


def section_scale(r: dict[str, Any]) -> list[str]:
    lines = ["## 5. Scale", ""]
    gap = missing(r, "scale")
    if gap:
        return lines + gap
    s = r["scale"]
    shipped = (
        f" One more set, option B with N = {s['shipped_n']} under the shipped limit "
        "of 1, shows what that limit does."
        if s.get("shipped_n")
        else ""
    )
    lines += [
        f"N runs of one deployment submitted at once, each with its own `train.C` (so train "
        f"and evaluate run in every one; prepare comes from the remote), k = {s['repeats']} "
        f"batches per row (throughput: median of the batches; latency and memory: all runs "
        f"pooled). The shipped deployments have `concurrency_limit: 1`: runs of one "
        f"deployment wait for each other. To measure what the machine can do, the "
        f"benchmark's stack raises the limit to {s['concurrency_limit']}.{shipped} Worker "
        f"polling: {'1 s (tuned)' if s['worker'] == 'tuned' else '5 s (shipped)'}. Memory is "
        "sampled every 0.5 s from each flow container's cgroup: *working set* is what `docker "
        "stats` shows (usage minus inactive page cache), *RSS* the anonymous memory. *Machine "
        "busy* is the share of both cores in use during the batch; *server+worker* is the "
        "Prefect server's (with its database's, where it has one) and worker's share of the "
        "CPU time the stack used. The log "
        "columns count error lines the stack's services wrote during the batches: the "
        "server's SQLite answering `database is locked`, and the worker reporting it has "
        "not polled its pool for 30 s or more (its health check then fails)."
        + (f" ({s['log_errors_source']}.)" if s.get("log_errors_source") else "")
        + (
            " Over the whole life of the stack that served sections 2 and 5 (from its last "
            f"`up`), the server logged `database is locked` "
            f"{s['stack_log_errors_total'].get('database_locked', 0)} times."
            if s.get("stack_log_errors_total")
            else ""
        ),
        "",
    ]
    if s.get("reconstructed"):
        lines += [
            f"**Reconstructed results:** {s['reconstructed']} The latency column is therefore "
            "over the batches' median latencies, not over all runs.",
            "",
        ]
    rows = []
    for g in scale_groups(s["batches"]):
        rows.append(
            [
                g["option"].upper(),
                str(g["n"]),
                str(g["limit"]),
                span(g["throughput"], unit=""),
                span(g["latency"], digits=1),
                str(g["max_concurrent"]),
                span(g["working_set"], unit="MB", digits=0),
                span(g["rss"], unit="MB", digits=0),
                pct(g["busy"]),
                f"{g['stack_share']:.0%}" if g["stack_share"] is not None else "n/a",
                _log_errors(g["log_errors"]),
                f"{len(g['failures'])} / {g['runs']}",
                f"{g['foreign_batches']} of {g['repeats']}" if g["foreign"] else "none",
            ]
        )
    lines += table(
        [
            "option",
            "N",
            "limit",
            "runs/min",
            "latency (trigger -> Completed)",
            "max running",
            "peak working set / container",
            "peak RSS / container",
            "machine busy",
            "server+worker CPU",
            "server `database is locked` / worker `not polled` log lines",
            "failed / runs",
            "batches with other containers running",
        ],
        rows,
    )
    failures = [
        f"{g['option'].upper()} N = {g['n']}: {f}"
        for g in scale_groups(s["batches"])
        for f in g["failures"]
    ]
    if failures:
        lines += ["Failed runs:", ""] + [f"- {f}" for f in failures] + [""]
    if s.get("aborted"):
        lines += [
            f"**The section broke off** before its last batches: submitting the next batch "
            f"failed with `{s['aborted'][:160]}`"
            + (
                "; the worker reported a run it could not submit as crashed: "
                + "; ".join(s.get("aborted_failures", []))
                if s.get("aborted_failures")
                else ""
            )
            + ".",
            "",
        ]
    foreign = sorted({c for g in scale_groups(s["batches"]) for c in g["foreign"]})
    if foreign:
        lines += [
            f"**Not a quiet machine for every batch:** other containers ran during some "
            f"batches (last column): {', '.join(foreign)}. Those batches shared the 2 cores "
            "with them; their numbers are upper bounds on latency and lower bounds on "
            "throughput.",
            "",
        ]
    return lines


def transfer(x: dict[str, Any], name: str) -> str:
    """ "1.23 [1.1–1.4] (56.0 MB/s)": seconds and the median throughput."""
    rate = num(x[f"{name}_mb_per_s"]["median"], 1)
    return f"{span(x[f'{name}_s'], unit='', digits=2)} ({rate} MB/s)"


def section_data(r: dict[str, Any]) -> list[str]:
    lines = ["## 6. Data scale", ""]
    gap = missing(r, "data")
    if gap:
        return lines + gap
    d = r["data"]
    lines += [
        "The pipeline's columns are iris's, so the synthetic data has them: scikit-learn's "
        "`make_classification` (4 features, 3 classes, seed 0), features rounded to 3 "
        "decimals and named as iris's, classes named as its species. It replaces the raw CSV "
        "of a throw-away workspace (`dvc add`), then `dvc repro --force` runs every stage "
        "(DVC's start-up, and each stage with its interpreter start and DVC's hashing and "
        "caching of its outputs, from the time DVC announces each stage); the *compute* "
        "column is the stage function alone, called in-process as option B does. "
        f"The object store is {d['store']} (moto: the stack's S3 stand-in). `dvc push` goes "
        "to an empty prefix, `dvc pull` into an empty cache and workspace; the plain copy "
        f"moves the same files with boto3's managed transfer. k = {d['repeats']}.",
        "",
    ]
    rows = []
    for x in d["results"]:
        rows.append(
            [
                f"{x['rows']:,}",
                f"{x['tracked_bytes'] / 2**20:.1f}",
                span(x["repro"]["dvc_startup"], unit="", digits=1),
                *(
                    f"{span(x['repro'][s], unit='', digits=1)} / "
                    f"{num(x['compute'][s]['median'], 2)}"
                    for s in ("prepare", "train", "evaluate")
                ),
                span(x["repro"]["total"], unit="", digits=1),
            ]
        )
    lines += table(
        [
            "rows",
            "MB tracked",
            "DVC start-up s",
            "prepare s (DVC / compute)",
            "train s",
            "evaluate s",
            "`dvc repro` s",
        ],
        rows,
    )
    rows = []
    for x in d["results"]:
        rows.append(
            [
                f"{x['rows']:,}",
                f"{x['tracked_bytes'] / 2**20:.1f}",
                *(
                    transfer(x, name)
                    for name in ("dvc_push", "s3_upload", "dvc_pull", "s3_download")
                ),
            ]
        )
    lines += table(
        ["rows", "MB", "`dvc push` s", "plain upload s", "`dvc pull` s", "plain download s"], rows
    )
    big = max(d["results"], key=lambda x: x["rows"])
    small = min(d["results"], key=lambda x: x["rows"])
    med = {
        key: big[key]["median"]
        for key in ("dvc_push_s", "s3_upload_s", "dvc_pull_s", "s3_download_s")
    }
    stage_overhead = [
        big["repro"][stage]["median"] - big["compute"][stage]["median"]
        for stage in ("prepare", "train", "evaluate")
    ]
    lines += [
        f"At {small['rows']:,} rows each stage under DVC takes about "
        f"{small['repro']['prepare']['median']:.1f} s for "
        f"{small['compute']['prepare']['median']:.2f} s of compute: a new interpreter "
        f"importing pandas and scikit-learn per stage. At {big['rows']:,} rows the compute "
        f"dominates (DVC adds {min(stage_overhead):.1f}–{max(stage_overhead):.1f} s per stage, "
        f"interpreter and hashing included). `dvc push`/`pull` carry a fixed cost of about "
        f"{small['dvc_push_s']['median']:.1f} s (DVC's start-up and its index), so on small "
        f"data they are slow next to a plain copy; on {big['tracked_bytes'] / 2**20:.0f} MB, "
        f"push takes {med['dvc_push_s'] / med['s3_upload_s']:.1f}x and pull "
        f"{med['dvc_pull_s'] / med['s3_download_s']:.1f}x the plain copy's time, and that "
        "absolute gap stays about the same size as the data grows, so DVC's transfer is not "
        "the bound at these sizes.",
        "",
    ]
    return lines


# ---------------------------------------------------------------- the chart


def chart(r: dict[str, Any], path: Path) -> bool:
    panels = []
    local = r.get("local") or {}
    for kind, title in (
        ("noop", "LOCAL NO-OP RUN, S (BAR: MEDIAN, WHISKER: MIN-MAX)"),
        ("full", "LOCAL RUN AFTER A TRAIN PARAM CHANGE, S"),
    ):
        rows = local.get(kind) or {}
        bars = [
            Bar(
                SHORT[v],
                [rows[v]["median"]],
                rows[v]["min"],
                rows[v]["max"],
                times(ratio(rows[v], rows.get("dvc"))).upper(),
            )
            for v in ("dvc", "a_cli", "b_cli", "a_inproc", "b_inproc")
            if v in rows
        ]
        if bars:
            target = 1.5 * rows["dvc"]["median"] if kind == "noop" and "dvc" in rows else None
            if target:
                title = title.replace(", S (", ", S (DASHED: 1.5X DVC REPRO; ")
            panels.append(Panel(title, bars, target=target))
    latency = (r.get("latency") or {}).get("results", {})
    bars = []
    for worker in ("default", "tuned"):
        for key in ("a_cold", "a_warm", "b_cold", "b_warm"):
            cell = latency.get(worker, {}).get(key)
            if cell and cell["total"]["median"] is not None:
                segments = [cell[p]["median"] or 0.0 for p in PHASES]
                label = f"{key.replace('_', ' ')} {'5S' if worker == 'default' else '1S'} POLL"
                bars.append(Bar(label, segments, cell["total"]["min"], cell["total"]["max"]))
    if bars:
        panels.append(
            Panel(
                "CONTAINERIZED TRIGGER -> COMPLETED, S (MEDIAN PHASES; DASHED: 10 S)",
                bars,
                legend=[PHASE_NAMES[p] for p in PHASES],
                target=TARGETS["warm_s"],
            )
        )
    groups = scale_groups((r.get("scale") or {}).get("batches", []))
    if groups:
        panels.append(
            Panel(
                "SCALE: THROUGHPUT, RUNS/MIN (CONCURRENCY LIMIT IN BRACKETS)",
                [
                    Bar(
                        f"{g['option']} N={g['n']} [{g['limit']}]",
                        [g["throughput"]["median"]],
                        g["throughput"]["min"],
                        g["throughput"]["max"],
                        f"{len(g['failures'])} FAILED",
                    )
                    for g in groups
                ],
                unit="/MIN",
            )
        )
    data = (r.get("data") or {}).get("results", [])
    if data:
        parts = ("dvc_startup", "prepare", "train", "evaluate")
        panels.append(
            Panel(
                "DATA SCALE: DVC REPRO --FORCE, S (MEDIAN PARTS)",
                [
                    Bar(
                        f"{x['rows']:,} ROWS",
                        [x["repro"][p]["median"] for p in parts],
                        x["repro"]["total"]["min"],
                        x["repro"]["total"]["max"],
                    )
                    for x in data
                ],
                legend=["DVC start-up", "prepare", "train", "evaluate"],
            )
        )
    if not panels:
        return False
    bar_chart(panels, path)
    return True


# ---------------------------------------------------------------- bounds


def bounds(r: dict[str, Any], k: dict[str, Any]) -> list[str]:
    """What limits each missed target, with the numbers that show it."""
    from bench import analysis

    return analysis.explain(r, k)


def how_to(r: dict[str, Any]) -> list[str]:
    total = (r.get("timing") or {}).get("total_s")
    took = f" This run took {total / 60:.0f} min." if total else ""
    return [
        "## Running it",
        "",
        "```bash",
        "make bench        # everything (k = 5 local, 3 elsewhere): writes this page",
        "make bench-smoke  # same code, tiny sizes, k = 1, minutes: bench/out/smoke/",
        ".venv/bin/python -m bench --only local,data   # some sections (local, data, image, stack)",
        ".venv/bin/python -m bench --report-only       # re-render this page from bench/out/full/",
        "```",
        "",
        "The code is in `bench/` (one module per section; `report.py` renders, `png.py` draws "
        "the chart without a plotting library). The Docker parts build their own images "
        "(`mltoy/bundle:bench`, `mltoy/s3-standin:bench`, `mltoy/postgres-standin:bench`, "
        "`mltoy/socket-proxy:bench`, "
        "through scripts/e2e-prepare.sh) and "
        "bring up their own stack: compose project `mltoy-bench`, network `mltoy-bench-net`, "
        "volume `mltoy-bench-remote-settings`, work pool `mltoy-bench-pool`, fresh secrets in a "
        "temporary env file; it is always taken down with `down -v`. The benchmark is not "
        "part of `make test`. Run it on a quiet machine: other load shows up in every number "
        f"(the machine table lists what else ran).{took}",
        "",
    ]


def render(r: dict[str, Any], png_name: str | None) -> str:
    plan = r.get("plan") or {}
    k = key_numbers(r)
    lines = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`python -m bench`), which also writes this page. Every "
        "number is the median of k runs, with [min–max] beside it; ratios are of medians "
        "measured side by side in the same run, on the machine below. The raw results are "
        "JSON in `bench/out/` (git-ignored); `python -m bench --report-only` renders this page "
        "again from them. `make bench-smoke` runs the same code with tiny sizes in minutes.",
        "",
    ]
    if plan.get("mode") == "smoke":
        lines += [
            "**Smoke run: tiny sizes, not a measurement.** Left out: "
            + "; ".join(plan.get("left_out", []))
            + ".",
            "",
        ]
    if png_name:
        lines += [f"![benchmark summary]({png_name})", ""]
    lines += ["## Machine", ""] + machine(r)
    notes = (r.get("notes") or {}).get("notes", [])
    if notes:  # bench/out/*/notes.json: what the person running it saw (e.g. other load)
        lines += ["**Notes on this run:**", ""] + [f"- {note}" for note in notes] + [""]
    lines += [
        "## Targets",
        "",
        "Local targets are judged on a new process per run (what `make run` and every flow "
        "container do); the warm-process figure shows the engine's own share.",
        "",
    ] + targets(r, k)
    sections: list[Callable[[dict[str, Any]], list[str]]] = [
        section_local,
        section_latency,
        section_coldstart,
        section_image,
        section_scale,
        section_data,
    ]
    for section in sections:
        lines += section(r)
    lines += ["## What bounds the missed targets", ""] + bounds(r, k)
    lines += how_to(r)
    return "\n".join(lines).rstrip() + "\n"


def write(out: Path, markdown: Path, png: Path) -> None:
    results = load(out)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    drawn = chart(results, png)
    markdown.write_text(render(results, png.name if drawn else None))
