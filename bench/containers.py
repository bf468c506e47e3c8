"""Sections 2, 3, 5 and 6, on the benchmark's own compose stack.

- cold start: `down -v`, then `up --wait` to healthy, `wait deploy`, and a first run of
  option A triggered at once, to Completed;
- latency: trigger -> Completed of A and B, split into phases (bench/timeline.py), cold
  (a new remote: the bucket emptied but for the raw data) then warm (same params again:
  everything in the remote), with the worker as shipped (polls every 5 s) and tuned
  (bench/compose.tuned.yaml: every 1 s);
- scale: N runs with distinct params submitted at once; throughput, latency, memory
  per flow container, CPU by component, failures;
- sweeps: trials of a sweep at several `max_parallel` against sequential runs
  (bench/sweeps.py).
"""

from __future__ import annotations

import time
from typing import Any

from bench.cgroups import Sampler
from bench.procs import log
from bench.stack import BenchStack
from bench.stacklogs import log_errors
from bench.stats import summarize
from bench.sweeps import sweeps
from bench.timeline import PHASES

FIRST_RUN_OPTION = "a"


def _not_completed(record: dict[str, Any]) -> str | None:
    if record["state"] != "COMPLETED":
        return f"{record['id']}: {record['state']}: {record['message']}"
    return None


def cold_start(stack: BenchStack, repeats: int) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    for repeat in range(repeats):
        stack.down()
        start = time.time()
        with_steps = stack.up()
        with stack.connected():
            run_id = stack.trigger(FIRST_RUN_OPTION, parameters={})
            stack.quiet_schedules()
            record = stack.describe(stack.wait_final(run_id, 900, every=0.5))
        completed = record["created"] + (record["phases"]["total"] or float("nan"))
        sample = {
            **with_steps,
            "up_to_deployed_s": with_steps["up_healthy_s"] + with_steps["deploy_s"],
            "up_to_first_completed_s": completed - start,
            "first_run": record,
        }
        log(
            f"cold start {repeat + 1}/{repeats}: healthy {sample['up_healthy_s']:.1f}s, "
            f"deployed +{sample['deploy_s']:.1f}s, first run Completed at "
            f"{sample['up_to_first_completed_s']:.1f}s ({record['state']})"
        )
        samples.append(sample)
    return {
        "repeats": repeats,
        "first_run_option": FIRST_RUN_OPTION,
        "up_healthy_s": summarize(s["up_healthy_s"] for s in samples),
        "deploy_s": summarize(s["deploy_s"] for s in samples),
        "up_to_deployed_s": summarize(s["up_to_deployed_s"] for s in samples),
        "up_to_first_completed_s": summarize(s["up_to_first_completed_s"] for s in samples),
        "failures": [f for s in samples if (f := _not_completed(s["first_run"]))],
        "samples": samples,
    }


def latency(stack: BenchStack, repeats: int, workers: tuple[str, ...]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for worker in workers:
        stack.set_worker(worker == "tuned")
        runs: dict[str, list[dict[str, Any]]] = {}
        for repeat in range(repeats):
            for option in ("a", "b"):
                stack.wipe_remote()
                for cache in ("cold", "warm"):
                    record = stack.run_and_split(option)
                    runs.setdefault(f"{option}_{cache}", []).append(record)
                    total = record["phases"]["total"]
                    log(
                        f"latency {worker} {option} {cache} {repeat + 1}/{repeats}: "
                        f"{record['state']} in {total or float('nan'):.1f}s {record['stages']}"
                    )
        results[worker] = {
            key: {
                "total": summarize(r["phases"]["total"] for r in records),
                **{phase: summarize(r["phases"][phase] for r in records) for phase in PHASES},
                "stages": [r["stages"] for r in records],
                "failures": [f for r in records if (f := _not_completed(r))],
            }
            for key, records in runs.items()
        }
        results[worker]["runs"] = runs
    return {"repeats": repeats, "workers": list(workers), "results": results}


def scale(stack: BenchStack, plan: dict[str, Any], progress: Any) -> dict[str, Any]:
    """`progress(result)` gets the result so far after every batch (kept if a later
    batch breaks the run)."""
    stack.set_worker(plan["scale_worker"] == "tuned")
    sizes, repeats, shipped_n = plan["scale_sizes"], plan["scale_repeats"], plan["scale_shipped_n"]
    limit = max(sizes) * 2
    result: dict[str, Any] = {
        "sizes": list(sizes),
        "options": list(plan["scale_options"]),
        "repeats": repeats,
        "worker": plan["scale_worker"],
        "concurrency_limit": limit,
        "shipped_n": shipped_n,
        "batches": [],
    }
    # As shipped (concurrency_limit: 1) runs of one deployment wait for each other: one
    # set shows that; to see what the machine can do, the other sets lift the limit.
    batches = [("b", shipped_n, 1)] * repeats if shipped_n else []
    batches += [(o, n, limit) for o in plan["scale_options"] for n in sizes for _ in range(repeats)]
    for option, n, batch_limit in batches:
        stack.set_concurrency(batch_limit)
        result["batches"].append(_run_batch(stack, option, n, batch_limit))
        progress(result)
    result["stack_log_errors_total"] = log_errors(stack.project)
    return result


def _run_batch(stack: BenchStack, option: str, n: int, limit: int) -> dict[str, Any]:
    start = time.time()
    with Sampler(stack.env["MLTOY_WORK_POOL"], stack.project) as sampler:
        ids = [
            stack.trigger(option, parameters={"params": {"train": {"C": stack.unique_c()}}})
            for _ in range(n)
        ]
        finals = stack.wait_finals(ids, timeout=300 + 60 * n)
    end = time.time()
    records = [
        stack.describe(finals[i]) if i in finals else stack.unfinished(i, end - start) for i in ids
    ]
    batch = {
        **_batch(option, n, records, sampler),
        "concurrency_limit": limit,
        "window": [start, end],
        "log_errors": log_errors(stack.project, start, end),
    }
    log(
        f"scale {option} N={n} limit {limit}: {batch['throughput_per_min']:.2f} runs/min, "
        f"latency median {batch['latency_s']['median']:.1f}s, max running "
        f"{batch['max_concurrent']}, failures {len(batch['failures'])}, machine CPU busy "
        f"{batch['machine_busy']:.0%}"
    )
    return batch


def _batch(option: str, n: int, records: list[dict[str, Any]], sampler: Sampler) -> dict[str, Any]:
    created = min(r["created"] for r in records)
    ends = [r["created"] + r["phases"]["total"] for r in records if r["phases"]["total"]]
    span = (max(ends) - created) if ends else None
    flows = [sampler.flows.get(r["id"], {}) for r in records]
    flow_cpu = sum(f.get("cpu_last", 0.0) for f in flows)
    return {
        "option": option,
        "n": n,
        "span_s": span,
        "throughput_per_min": (60 * len(ends) / span) if span else 0.0,
        "latency_s": summarize(r["phases"]["total"] for r in records),
        "queue_wait_s": summarize(r["phases"]["queue_wait"] for r in records),
        "flow_run_s": summarize(r["phases"]["flow_run"] for r in records),
        "peak_working_set_mb": summarize(f.get("working_set", 0) / 2**20 for f in flows if f),
        "peak_rss_mb": summarize(f.get("rss", 0) / 2**20 for f in flows if f),
        "peak_cgroup_mb": summarize(f.get("peak", 0) / 2**20 for f in flows if f),
        "containers_sampled": sum(1 for f in flows if f),
        "max_concurrent": _max_concurrent(records),
        "cpu_s": {
            "flow containers": flow_cpu,
            **{name: s.get("cpu_s", 0.0) for name, s in sampler.services.items()},
        },
        "machine_busy": sampler.machine_busy,
        "sampled_wall_s": sampler.wall_s,
        "failures": [f for r in records if (f := _not_completed(r))],
        "stages": [r["stages"] for r in records],
        "foreign_containers": sorted(sampler.foreign),
    }


def _max_concurrent(records: list[dict[str, Any]]) -> int:
    """Most flow runs in Running at once (from their Running -> Completed spans)."""
    marks = []
    for r in records:
        p = r["phases"]
        if p["flow_run"] is None or p["total"] is None:
            continue
        end = r["created"] + p["total"]
        marks += [(end - p["flow_run"], 1), (end, -1)]
    running = peak = 0
    for _, step in sorted(marks, key=lambda m: (m[0], m[1])):
        running += step
        peak = max(peak, running)
    return peak


def run_sections(stack: BenchStack, plan: dict[str, Any], save: Any) -> list[str]:
    """Cold start leaves the stack up; latency and scale reuse it. `save(name, result)`
    keeps each result as soon as it exists; a failed part is saved as its error."""
    parts = {
        "coldstart": lambda: cold_start(stack, plan["coldstart_repeats"]),
        "latency": lambda: latency(stack, plan["latency_repeats"], plan["latency_workers"]),
        "scale": lambda: scale(stack, plan, lambda partial: save("scale", partial)),
        "sweeps": lambda: sweeps(stack, plan["sweep_trials"], plan["sweep_parallel"]),
    }
    chosen = plan.get("stack_parts") or list(parts)
    if "coldstart" not in chosen:
        stack.up()  # the stack the other parts measure, its start not measured
    failed = []
    for name, part in parts.items():
        if name not in chosen:
            continue
        try:
            if name == "coldstart":
                save(name, part())
                continue
            with stack.connected():
                stack.quiet_schedules()
                save(name, part())
        except Exception as exc:  # keep going: the other parts may still measure
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            save(name, {"error": f"{type(exc).__name__}: {exc}"})
            failed.append(name)
            if name == "coldstart":
                raise  # no stack to measure the rest on
    return failed
