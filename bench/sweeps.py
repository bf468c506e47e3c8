"""Part of section 5 on the benchmark's stack: what a sweep's parallel trials buy.

The same number of trials of option A (distinct `train.C` values, so each trains) run:

- one after another as single runs of the trial deployment (`option-a-trial`), each
  triggered when the previous one is final: the baseline;
- as one sweep (the `sweep` deployment) for each `max_parallel` (1, 2, 4), with new values
  each time (nothing cached);
- the last sweep again: every stage of every trial restored (DVC's run cache).

Wall time is from the first trigger to the last final state (a sweep: the sweep run's
own span, its container included); runs/min counts the trials; machine CPU busy comes
from /proc while the batch ran. The trial deployment's concurrency limit (shipped: 2,
the machine's cores) is raised to the largest `max_parallel` for the sweeps, so the
limit measured is the sweep's own.
"""

from __future__ import annotations

import time
from typing import Any

from bench.cgroups import Sampler
from bench.procs import log
from bench.stack import BenchStack
from flows.sweep import LEADERBOARD_KEY, TRIAL_DEPLOYMENTS

SWEEP = "sweep/sweep"
OPTION = "a"


def _batch(stack: BenchStack, label: str, go: Any) -> dict[str, Any]:
    """Run `go()` (it returns the runs' final states and the trials' rows) under the
    sampler; the batch's wall time, throughput and CPU."""
    with Sampler(stack.env["MLTOY_WORK_POOL"], stack.project) as sampler:
        start = time.time()
        failures, rows = go()
        wall = time.time() - start
    ran = sum(1 for row in rows if row["stages ran"])
    result = {
        "label": label,
        "trials": len(rows),
        "wall_s": wall,
        "runs_per_min": 60 * len(rows) / wall,
        "machine_busy": sampler.machine_busy,
        "trials_that_ran_a_stage": ran,
        "failures": failures,
    }
    log(
        f"sweeps {label}: {len(rows)} trials in {wall:.1f}s ({result['runs_per_min']:.2f}/min), "
        f"CPU busy {sampler.machine_busy or 0:.0%}, {ran} ran a stage, {len(failures)} failed"
    )
    return result


def _sequential(stack: BenchStack, values: list[float]) -> tuple[list[str], list[dict]]:
    deployment = stack.api.read_deployment_by_name(TRIAL_DEPLOYMENTS[OPTION]).id
    failures, rows = [], []
    for value in values:
        run = stack.api.create_flow_run_from_deployment(
            deployment, parameters={"params": {"train": {"C": value}}}
        )
        final = stack.wait_final(run.id, 600, every=0.5)
        if not final.state.is_completed():
            failures.append(f"{run.id}: {final.state.name}: {final.state.message}")
        ran = [s for s, outcome in stack.describe(final)["stages"].items() if outcome == "ran"]
        rows.append({"stages ran": ", ".join(ran)})
    return failures, rows


def _sweep(stack: BenchStack, values: list[float], max_parallel: int) -> Any:
    def go() -> tuple[list[str], list[dict]]:
        deployment = stack.api.read_deployment_by_name(SWEEP).id
        grid = [f"train.C={','.join(str(v) for v in values)}"]
        run = stack.api.create_flow_run_from_deployment(
            deployment,
            parameters={"overrides": grid, "option": OPTION, "max_parallel": max_parallel},
        )
        final = stack.wait_final(run.id, 300 + 120 * len(values), every=0.5)
        rows = stack.artifact_rows(run.id, LEADERBOARD_KEY)
        failures = [
            f"trial {r['trial']}: {r['state']}: {r['reason']}"
            for r in rows
            if r["state"] != "Completed"
        ]
        if not final.state.is_completed():
            failures.append(f"sweep {run.id}: {final.state.name}: {final.state.message}")
        return failures, rows

    return go


def sweeps(stack: BenchStack, trials: int, parallel: tuple[int, ...]) -> dict[str, Any]:
    values = iter(stack.unique_c() for _ in range(trials * (len(parallel) + 1)))

    def fresh() -> list[float]:
        return [next(values) for _ in range(trials)]

    batches = [_batch(stack, "sequential", lambda: _sequential(stack, fresh()))]
    stack.set_limit(TRIAL_DEPLOYMENTS[OPTION], max(parallel))
    try:
        last: list[float] = []
        for max_parallel in parallel:
            last = fresh()
            label = f"max_parallel {max_parallel}"
            batches.append(_batch(stack, label, _sweep(stack, last, max_parallel)))
        batches.append(
            _batch(stack, f"max_parallel {parallel[-1]}, again", _sweep(stack, last, parallel[-1]))
        )
    finally:
        stack.set_limit(TRIAL_DEPLOYMENTS[OPTION], 2)
    base = batches[0]["wall_s"]
    for batch in batches:
        batch["wall_vs_sequential"] = batch["wall_s"] / base
    first = batches[-2]["wall_s"]
    return {
        "option": OPTION,
        "trials": trials,
        "max_parallel": list(parallel),
        "batches": batches,
        "cached_vs_first": batches[-1]["wall_s"] / first,
    }
