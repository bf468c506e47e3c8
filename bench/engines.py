"""Section `engines`: throughput with workers on one Docker engine, then on two.

A stack of its own with the registry (compose.registry.yaml; harness/scale_out.py), each
worker taking at most `worker_limit` runs at once (MLTOY_WORKER_LIMIT: one per core of
its host), polling every second (as the tuned worker of section 5). Bursts of N runs of
the trial deployment, each with its own `train.C` (so each trains), its concurrency
limit raised to N: first with the stack's worker alone, then after `make worker-join`
put a second worker on a second engine (docker/engine-standin) on this machine. The same
two cores run both engines: the point is that it works, and what the second engine
costs (push, join, throughput), not a speed-up. What the join's pulls cost is its time.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.cgroups import Sampler
from bench.procs import log
from bench.stack import PROJECT
from deploy.polling import poll
from flows.sweep import TRIAL_DEPLOYMENTS
from harness.scale_out import RegistryStack
from harness.stack import ContainerEvents

TRIAL = TRIAL_DEPLOYMENTS["a"]


def _burst(stack: RegistryStack, n: int, label: str, c0: float) -> dict[str, Any]:
    import docker

    pool = stack.env["MLTOY_WORK_POOL"]
    engines = {"this": docker.from_env(), **{e.container: e.client() for e in stack.engines}}
    starts = {name: ContainerEvents(pool, client) for name, client in engines.items()}
    trial = stack.api.read_deployment_by_name(TRIAL)
    try:
        with Sampler(pool, stack.project) as sampler:
            start = time.time()
            ids = [
                stack.api.create_flow_run_from_deployment(
                    trial.id, parameters={"params": {"train": {"C": round(c0 + 0.0011 * i, 4)}}}
                ).id
                for i in range(n)
            ]
            finals = stack.wait_finals(ids, timeout=300 + 60 * n)
            wall = time.time() - start
    finally:
        for watcher in starts.values():
            watcher.close()
    failures = [
        f"{run_id}: {finals[run_id].state.name if run_id in finals else 'not final'}"
        for run_id in ids
        if run_id not in finals or not finals[run_id].state.is_completed()
    ]
    result = {
        "label": label,
        "n": n,
        "engines": len(engines),
        "wall_s": wall,
        "runs_per_min": 60 * n / wall,
        "runs_per_engine": sorted((len(w.started()) for w in starts.values()), reverse=True),
        "machine_busy": sampler.machine_busy,
        "failures": failures,
    }
    log(
        f"engines {label}: {n} runs in {wall:.1f}s ({result['runs_per_min']:.2f}/min), per "
        f"engine {result['runs_per_engine']}, CPU busy {sampler.machine_busy or 0:.0%}, "
        f"{len(failures)} failed"
    )
    return result


def run_section(prepared: dict[str, Any], workdir: Path, plan: dict[str, Any]) -> dict[str, Any]:
    n, repeats, limit = plan["engines_burst"], plan["engines_repeats"], plan["engines_worker_limit"]
    stack = RegistryStack.with_registry(
        prepared,
        workdir / "mltoy",
        f"{PROJECT}-engines",
        MLTOY_WORKER_LIMIT=str(limit),
        MLTOY_WORKER_POLL_SECONDS="1",
    )
    stack.transcript = workdir / "compose.log"
    result: dict[str, Any] = {"n": n, "repeats": repeats, "worker_limit": limit, "batches": []}
    try:
        start = time.perf_counter()
        up = stack.make_up()
        if up.returncode != 0:
            raise RuntimeError(f"make up failed ({up.returncode}): {up.stderr[-2000:]}")
        result["up_s"] = time.perf_counter() - start
        result["push_s"] = stack.push()
        log(f"engines: stack up in {result['up_s']:.0f}s, images pushed in {result['push_s']:.0f}s")
        with stack.connected():
            stack.quiet_schedules()
            stack.set_limit(TRIAL, n)
            c0 = 0.5
            for _ in range(repeats):
                result["batches"].append(_burst(stack, n, "one engine", c0))
                c0 += 0.1
            engine = stack.add_engine(prepared["ENGINE_STANDIN_IMAGE"], workdir / "engine2")
            result["join_s"] = stack.join(engine)
            poll(lambda: len(stack.online_workers()) >= 2 or None, 120, "the second worker online")
            log(f"engines: the second engine joined in {result['join_s']:.0f}s (pulls included)")
            for _ in range(repeats):
                result["batches"].append(_burst(stack, n, "two engines", c0))
                c0 += 0.1
        one = [b["runs_per_min"] for b in result["batches"] if b["engines"] == 1]
        two = [b["runs_per_min"] for b in result["batches"] if b["engines"] == 2]
        result["two_vs_one"] = statistics.median(two) / statistics.median(one)
        return result
    except Exception:
        stack.dump_logs(workdir / "stack-logs.txt")
        raise
    finally:
        stack.down()
