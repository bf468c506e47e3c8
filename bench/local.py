"""Section 1: local overhead of the flows over bare `dvc repro`, measured side by side.

Seven variants, each in its own throw-away workspace, against one local Prefect server:

- `dvc`: `python -m dvc repro` (what option A runs inside its task);
- `a_cli`, `b_cli`: `python -m flows.cli a|b --project-dir P`, a new interpreter per run
  (imports included, as in a flow container or a user's shell);
- `a_inproc`, `b_inproc`: `pipeline_a(...)` / `pipeline_b(...)` called in one warmed-up
  process (imports paid once, with `flows.cli`'s settings): the flow engine's own overhead;
- `make_run`: `make run` in a fresh clone (a Git work tree), against the local server it
  starts in the background on its first (warm-up) run, as a user's second `make run`;
  `dvc_git`: bare `dvc repro` in another such clone (DVC in a Git work tree reads Git too).

The new-process variants also record their peak resident memory (ru_maxrss: the process,
or the largest process it waited for).

Each repeat runs every variant once as a no-op (everything up to date) and once after a
`train.C` change (a value never used before, so no cache can answer), in an order that
rotates between repeats. The measuring runs in a child process (`python -m bench.local`)
whose environment points Prefect at the section's server.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.prefect_local import local_server
from bench.procs import PYTHON, child_env, log, run_measured, run_timed
from bench.stats import summarize
from harness import REPO_ROOT, make_in_checkout
from harness.stack import free_port, stage_outcomes
from harness.workspace import checkout_copy, make_project, params_with, set_param, write_raw_iris

VARIANTS = ("dvc", "a_cli", "b_cli", "a_inproc", "b_inproc", "dvc_git", "make_run")
# {stage: outcome}, peak RSS bytes, the command's own wall seconds (None in-process)
Outcome = tuple[dict[str, str], int | None, float | None]
NOT_RUN = {"skipped", "restored"}
GIT_CLONES = ("dvc_git", "make_run")


def c_value(repeat: int) -> float:
    """A train.C per full run that no earlier run used (1.0 is the project's)."""
    return round(0.5 + 0.0137 * (repeat + 1), 4)


# ---------------------------------------------------------------- the measuring child


def _runners(workdir: Path, make_port: int) -> dict[str, Callable[[Path, float | None], Outcome]]:
    from flows.cli import local_settings
    from flows.dvc_output import stage_outcomes as dvc_outcomes
    from flows.option_a import pipeline_a
    from flows.option_b import pipeline_b

    logs = workdir / "logs"

    def dvc(project: Path, c: float | None) -> Outcome:
        if c is not None:
            set_param(project, "train.C", c)
        elapsed, result, rss = run_measured(
            [PYTHON, "-m", "dvc", "repro"], cwd=project, log_file=logs / f"{project.name}.log"
        )
        outcomes = dvc_outcomes((result.stdout + result.stderr).splitlines())
        # A no-op `dvc repro` names no stage as running: absent means up to date.
        stages = ("prepare", "train", "evaluate")
        return {stage: outcomes.get(stage, "skipped") for stage in stages}, rss, elapsed

    def cli(option: str) -> Callable[[Path, float | None], Outcome]:
        def run(project: Path, c: float | None) -> Outcome:
            argv = [PYTHON, "-m", "flows.cli", option, "--project-dir", str(project)]
            if c is not None:
                params = workdir / f"params-{option}-{c}.yaml"
                params.write_text(yaml.safe_dump(params_with(project, "train.C", c)))
                argv += ["--params", str(params)]
            elapsed, result, rss = run_measured(argv, project, log_file=logs / f"{option}_cli.log")
            return stage_outcomes(result.stdout.splitlines()), rss, elapsed

        return run

    def inproc(pipeline: Callable[..., dict[str, Any]]) -> Callable:
        def run(project: Path, c: float | None) -> Outcome:
            params = {"train": {"C": c}} if c is not None else None
            with local_settings():  # as `python -m flows.cli` runs it
                return pipeline(project_dir=str(project), params=params)["stages"], None, None

        return run

    def make_run(project: Path, c: float | None) -> Outcome:
        if c is not None:
            set_param(project, "train.C", c)
        elapsed, result, rss = run_measured(
            make_argv("run", make_port), cwd=project, env=make_env(), log_file=logs / "make.log"
        )
        return stage_outcomes(result.stdout.splitlines()), rss, elapsed

    return {
        "dvc": dvc,
        "a_cli": cli("a"),
        "b_cli": cli("b"),
        "a_inproc": inproc(pipeline_a),
        "b_inproc": inproc(pipeline_b),
        "dvc_git": dvc,
        "make_run": make_run,
    }


def make_argv(target: str, port: int) -> list[str]:
    return make_in_checkout(target, f"PREFECT_LOCAL_PORT={port}")


def make_env() -> dict[str, str]:
    """As a user's shell: no Prefect settings, so `make run` uses the clone's own server."""
    env = child_env()
    return {key: value for key, value in env.items() if not key.startswith("PREFECT_")}


def _check(variant: str, kind: str, outcomes: dict[str, str]) -> None:
    ran = {stage for stage, outcome in outcomes.items() if outcome not in NOT_RUN}
    expected = set() if kind == "noop" else {"train", "evaluate"}
    if ran != expected:
        raise AssertionError(
            f"{variant} {kind}: expected {expected or 'nothing'} to run: {outcomes}"
        )


def measure(workdir: Path, repeats: int) -> dict[str, Any]:
    make_port = free_port()
    runners = _runners(workdir, make_port)
    projects = {variant: workdir / "projects" / variant for variant in VARIANTS}
    try:
        for variant in VARIANTS:  # warm-up: a first full run, then a first no-op
            runners[variant](projects[variant], None)
            _check(variant, "noop", runners[variant](projects[variant], None)[0])
        times: dict[str, dict[str, list[float]]] = {"noop": {}, "full": {}}
        memory: dict[str, dict[str, list[int]]] = {"noop": {}, "full": {}}
        for repeat in range(repeats):
            order = VARIANTS[repeat % len(VARIANTS) :] + VARIANTS[: repeat % len(VARIANTS)]
            for kind, c in (("noop", None), ("full", c_value(repeat))):
                for variant in order:
                    start = time.perf_counter()
                    outcomes, rss, own = runners[variant](projects[variant], c)
                    elapsed = own if own is not None else time.perf_counter() - start
                    _check(variant, kind, outcomes)
                    times[kind].setdefault(variant, []).append(elapsed)
                    if rss is not None:
                        memory[kind].setdefault(variant, []).append(rss)
                    print(
                        f"{kind} {variant}: {elapsed:.2f}s {outcomes}", file=sys.stderr, flush=True
                    )
    finally:
        run_timed(make_argv("prefect-stop", make_port), projects["make_run"], make_env())
    return {"times": times, "memory": memory}


def main(workdir: str, repeats: str, out: str) -> None:
    """`python -m bench.local WORKDIR REPEATS OUT`: the child's entry point."""
    Path(out).write_text(json.dumps(measure(Path(workdir), int(repeats))))


# ---------------------------------------------------------------- the section


def run_section(workdir: Path, repeats: int) -> dict[str, Any]:
    from bench import profile

    raw = write_raw_iris(workdir / "iris.csv")
    for variant in VARIANTS:
        if variant in GIT_CLONES:
            clone = checkout_copy(workdir / "projects" / variant)
            shutil.copy2(raw, clone / "data/raw/iris.csv")  # make run would write it too
        else:
            make_project(workdir / "projects" / variant, raw)
    with local_server(workdir) as prefect_env:
        out = workdir / "local-times.json"
        log(f"local: {len(VARIANTS)} variants x {repeats} repeats (no-op and train change)")
        elapsed, _ = run_timed(
            [PYTHON, "-m", "bench.local", str(workdir), str(repeats), str(out)],
            cwd=REPO_ROOT,
            env=child_env(prefect_env),
            log_file=workdir / "logs" / "local-child.log",
            timeout=3600,
        )
        measured = json.loads(out.read_text())
        times, memory = measured["times"], measured["memory"]
        log(f"local: timings done in {elapsed:.0f}s; profiling one no-op run of A and B")
        profiles = {
            option: profile.profile_noop(
                option, workdir / "projects" / f"{option}_cli", prefect_env, workdir / "profile"
            )
            for option in ("a", "b")
        }
    return {
        "repeats": repeats,
        "noop": {variant: summarize(values) for variant, values in times["noop"].items()},
        "full": {variant: summarize(values) for variant, values in times["full"].items()},
        "peak_rss_bytes": {
            kind: {variant: summarize(values) for variant, values in by_variant.items()}
            for kind, by_variant in memory.items()
        },
        "profile": profiles,
    }


if __name__ == "__main__":
    main(*sys.argv[1:4])
