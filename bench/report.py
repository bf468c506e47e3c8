"""Render docs/benchmarks.md and its chart from the JSON results alone (no measuring).

The page's prose and tables are the template bench/report.md.j2; this module loads the
results, derives what the template compares (key numbers, the scale batches pooled per
configuration, which bound explains each missed target) and formats numbers.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import jinja2

from bench.stats import ratio, summarize
from bench.timeline import PHASES

LABELS = {
    "dvc": "bare `dvc repro`",
    "a_cli": "option A, `python -m flows.cli a`",
    "b_cli": "option B, `python -m flows.cli b`",
    "a_inproc": "option A, `pipeline_a()` in a warm process",
    "b_inproc": "option B, `pipeline_b()` in a warm process",
    "dvc_git": "bare `dvc repro` in a Git clone",
    "make_run": "`make run` in a Git clone (its local server already running)",
}
PHASE_NAMES = {phase: phase.replace("_", " ") for phase in PHASES}  # "queue wait", ...
TARGETS = {
    "a_noop_ratio": 2.5,
    "b_noop_ratio": 2.0,
    "make_run_ratio": 3.0,
    "noop_rss_mib": 200.0,
    "warm_s": 6.0,  # issue 15: shipped settings
    "image_mb": 650.0,  # issue 15
    "rebuild_s": 20.0,
}
NEW_PROCESS = ("a_cli", "b_cli", "make_run")  # what a user's no-op local run is


def load(out: Path) -> dict[str, Any]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(out.glob("*.json"))}


# ---------------------------------------------------------------- number formats


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def span(summary: dict | None, unit: str = "s", digits: int = 2, spec: str = "") -> str:
    """ "1.03 s [0.98–1.10]" (median [min–max]); "(n=1)" when there is one value."""
    if not summary or summary.get("median") is None:
        return "n/a"
    spec = spec or f".{digits}f"
    median = format(summary["median"], spec) + (f" {unit}" if unit else "")
    if summary["n"] == 1:
        return f"{median} (n=1)"
    return f"{median} [{format(summary['min'], spec)}–{format(summary['max'], spec)}]"


def pct(summary: dict | None) -> str:
    return span(summary, unit="", spec=".0%")


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def missing(results: dict[str, Any], name: str) -> str | None:
    """Why a section has no numbers, or None if it has."""
    error = results.get(f"{name}-error") or (results.get(name) or {}).get("error")
    if error:
        message = error["error"] if isinstance(error, dict) else error
        return f"**Not measured: the section failed** (`{message}`)."
    return None if name in results else "**Not measured in this run.**"


# ---------------------------------------------------------------- derived numbers


def _add_counts(counts: Any) -> dict[str, int] | None:
    """Sum of per-batch error counts; None when no batch counted them."""
    total: dict[str, int] | None = None
    for entry in counts:
        if entry is not None:
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
        stack_cpu = sum(cpu.get(name, 0.0) for name in ("prefect-server", "postgres", "worker"))

        def pooled_values(key: str, members: list[dict[str, Any]] = members) -> dict[str, Any]:
            return summarize(v for b in members for v in b[key]["values"])

        pooled.append(
            {
                "option": option,
                "n": n,
                "limit": limit,
                "repeats": len(members),
                "throughput": summarize(b["throughput_per_min"] for b in members),
                "latency": pooled_values("latency_s"),
                "working_set": pooled_values("peak_working_set_mb"),
                "rss": pooled_values("peak_rss_mb"),
                "max_concurrent": max(b["max_concurrent"] for b in members),
                "busy": summarize(b["machine_busy"] for b in members),
                "cpu_s": cpu,
                "stack_share": stack_cpu / sum(cpu.values()) if sum(cpu.values()) else None,
                "failures": [f for b in members for f in b["failures"]],
                "runs": sum(b["n"] for b in members),
                "log_errors": _add_counts(b.get("log_errors") for b in members),
                "foreign": sorted({c for b in members for c in b.get("foreign_containers", [])}),
                "foreign_batches": sum(1 for b in members if b.get("foreign_containers")),
            }
        )
    return pooled


def key_numbers(r: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The values the targets and the chart are about (None where not measured)."""
    k: dict[str, Any] = {}
    local = r.get("local") or {}
    noop = local.get("noop", {})
    rss = (local.get("peak_rss_bytes") or {}).get("noop", {})
    for variant in LABELS:
        k[f"{variant}_noop"] = (noop.get(variant) or {}).get("median")
        k[f"{variant}_noop_ratio"] = ratio(noop.get(variant), noop.get("dvc"))
        peak = (rss.get(variant) or {}).get("max")
        k[f"{variant}_noop_rss_mib"] = None if peak is None else peak / 2**20
    k["make_run_noop_ratio_git"] = ratio(noop.get("make_run"), noop.get("dvc_git"))
    peaks = [k[f"{variant}_noop_rss_mib"] for variant in NEW_PROCESS]
    k["noop_rss_mib"] = None if None in peaks else max(peaks)
    for worker, runs in ((r.get("latency") or {}).get("results") or {}).items():
        for key, value in runs.items():
            if key != "runs":
                k[f"{key}_{worker}"] = value["total"].get("median")
    image = r.get("image") or {}
    k["image_mb"] = image["size_bytes"] / 1e6 if image.get("size_bytes") else None
    k["rebuild_s"] = (image.get("code_only_rebuild_s") or {}).get("median")
    n = k["scale_n"] = max((g["n"] for g in groups), default=None)
    top = [g for g in groups if g["n"] == n and g["limit"] != 1]
    k["scale_failures"] = sum(len(g["failures"]) for g in groups) if groups else None
    k["scale_runs"] = sum(g["runs"] for g in groups) if groups else None
    k["scale_busy"] = min((g["busy"]["median"] for g in top if g["busy"]["median"]), default=None)
    shares = [g["stack_share"] for g in top if g["stack_share"] is not None]
    k["scale_stack_share"] = max(shares, default=None)
    k["scale_log_errors"] = _add_counts(g.get("log_errors") for g in top) or {}
    k["scale_top_failures"] = sum(len(g["failures"]) for g in top) if top else None
    k["scale_top_runs"] = sum(g["runs"] for g in top) if top else None
    return k


def judge(k: dict[str, Any]) -> dict[str, bool | None]:
    """Each target: met (True), missed (False) or not measured (None)."""
    a, b, b_ratio = k["a_cli_noop_ratio"], k["b_cli_noop"], k["b_cli_noop_ratio"]
    make_run, rss = k["make_run_noop_ratio"], k["noop_rss_mib"]
    warm = [k.get("a_warm_default"), k.get("b_warm_default")]
    errors = k["scale_log_errors"]
    busy, share = k["scale_busy"], k["scale_stack_share"] or 0.0
    trouble = errors.get("database_locked", 0) + errors.get("worker_not_polled", 0)
    return {
        "a_noop": None if a is None else a <= TARGETS["a_noop_ratio"],
        "a_noop_warm": (k["a_inproc_noop_ratio"] or 99) <= TARGETS["a_noop_ratio"],
        "b_noop": None
        if b_ratio is None or k["a_cli_noop"] is None
        else b < k["a_cli_noop"] and b_ratio <= TARGETS["b_noop_ratio"],
        "make_run": None if make_run is None else make_run <= TARGETS["make_run_ratio"],
        "noop_rss": None if rss is None else rss <= TARGETS["noop_rss_mib"],
        "warm": None if None in warm else max(warm) <= TARGETS["warm_s"],
        "image": None if k["image_mb"] is None else k["image_mb"] <= TARGETS["image_mb"],
        "rebuild": None if k["rebuild_s"] is None else k["rebuild_s"] < TARGETS["rebuild_s"],
        "scale_failures": None
        if k["scale_failures"] is None or k["scale_n"] != 16
        else k["scale_top_failures"] == 0,
        "cores": None if busy is None else busy >= 0.85 and share < 0.25 and not trouble,
        "trouble": bool(trouble),
    }


def part(profile: dict[str, Any], *prefixes: str) -> float:
    """Seconds of a no-op profile's parts whose names start with one of `prefixes`."""
    return sum(v for k, v in profile["parts"].items() if k.startswith(prefixes))


def heartbeat_s(profile: dict[str, Any]) -> float | None:
    """Time the run waited for Prefect's heartbeat thread to stop, if it shows."""
    for entry in profile.get("engine_parts", []):
        if entry["part"].startswith("heartbeat") and entry["cumulative_s"] >= 0.1:
            return entry["cumulative_s"]
    return None


def phase_medians(cell: dict[str, Any]) -> dict[str, float]:
    """A latency cell's median phases (0 where not measured)."""
    return {phase: cell[phase]["median"] or 0.0 for phase in PHASES}


def task_medians(records: list[dict[str, Any]]) -> tuple[list[tuple[str, float]], float | None]:
    """A latency cell's tasks by median seconds, largest first, and the median part of the
    flow-run phase spent in no task (the flow's own code between its tasks)."""
    seconds: dict[str, list[float]] = {}
    outside = []
    for record in records:
        tasks = record.get("tasks") or []
        for task in tasks:
            seconds.setdefault(task["name"], []).append(task["seconds"])
        flow_run = record["phases"].get("flow_run")
        if tasks and flow_run is not None:
            outside.append(flow_run - sum(task["seconds"] for task in tasks))
    ranked = sorted(
        ((name, statistics.median(values)) for name, values in seconds.items()),
        key=lambda item: -item[1],
    )
    return ranked, statistics.median(outside) if outside else None


def failure_kinds(failures: list[str]) -> str:
    server = sum(1 for f in failures if "Server error '50" in f)
    crashed = sum(1 for f in failures if "Crashed" in f)
    other = len(failures) - server - crashed
    parts = [
        f"{server} ended on a 500/503 answer from the Prefect server" if server else "",
        f"{crashed} was marked Crashed while it ran" if crashed else "",
        f"{other} other (e.g. the flow process exited 1)" if other else "",
    ]
    return ", ".join(part for part in parts if part)


def scale_bounds(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The biggest N's open batches, each with the bound its numbers show: `sqlite` (the
    first with database or worker trouble: explained at length), `same` (more of it),
    or `cores`/`not the cores`."""
    open_groups = [g for g in groups if g["limit"] != 1]
    biggest = max((g["n"] for g in open_groups), default=None)
    found, explained = [], False
    for g in (g for g in open_groups if g["n"] == biggest):
        errors = g.get("log_errors") or {}
        busy, share = g["busy"]["median"] or 0.0, g["stack_share"] or 0.0
        if errors.get("database_locked", 0) or errors.get("worker_not_polled", 0):
            bound, explained = ("same" if explained else "sqlite"), True
        else:
            bound = "the cores" if busy >= 0.85 and share < 0.25 else "not the cores"
        per_run = g["cpu_s"].get("flow containers", 0.0) / max(g["runs"], 1)
        found.append({**g, "errors": errors, "busy_s": busy, "bound": bound, "per_run": per_run})
    return found


def data_facts(d: dict[str, Any]) -> dict[str, Any]:
    """The smallest and biggest data size, and what DVC adds at the biggest."""
    big = max(d["results"], key=lambda x: x["rows"])
    small = min(d["results"], key=lambda x: x["rows"])
    overhead = [
        big["repro"][stage]["median"] - big["compute"][stage]["median"]
        for stage in ("prepare", "train", "evaluate")
    ]
    med = {
        key: big[key]["median"]
        for key in ("dvc_push_s", "s3_upload_s", "dvc_pull_s", "s3_download_s")
    }
    return {
        "big": big,
        "small": small,
        "overhead": overhead,
        "push_x": med["dvc_push_s"] / med["s3_upload_s"],
        "pull_x": med["dvc_pull_s"] / med["s3_download_s"],
    }


# ---------------------------------------------------------------- the page


def render(r: dict[str, Any], png_name: str | None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters.update(num=num, span=span, pct=pct, times=times, fmt=format)
    env.globals.update(
        missing=lambda name: missing(r, name),
        ratio=ratio,
        verdict=verdict,
        part=part,
        heartbeat_s=heartbeat_s,
        failure_kinds=failure_kinds,
        phase_medians=phase_medians,
        task_medians=task_medians,
        data_facts=data_facts,
    )
    groups = scale_groups((r.get("scale") or {}).get("batches", []))
    k = key_numbers(r, groups)
    page = env.get_template("report.md.j2").render(
        r=r,
        k=k,
        ok=judge(k),
        groups=groups,
        bounds=scale_bounds(groups),
        best=max(
            (g for g in groups if g["limit"] != 1),
            key=lambda g: g["throughput"]["median"] or 0.0,
            default=None,
        ),
        png_name=png_name,
        LABELS=LABELS,
        TARGETS=TARGETS,
        PHASES=PHASES,
        PHASE_NAMES=PHASE_NAMES,
    )
    return page.rstrip() + "\n"


def write(out: Path, markdown: Path, png: Path) -> None:
    from bench.chart import chart

    results = load(out)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    drawn = chart(results, png)
    markdown.write_text(render(results, png.name if drawn else None))
