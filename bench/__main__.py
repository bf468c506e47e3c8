"""`python -m bench [--smoke] [--repeats K] [--only SECTIONS] [--stack-parts PARTS]
[--out DIR] [--report-only]`.

Measures the bundle and writes docs/benchmarks.md (+ docs/benchmarks.png). Each
section's results are JSON in bench/out/ (git-ignored); the report is rendered from
them alone, so `--report-only` re-renders it without measuring.

`--smoke` keeps the script working in minutes: k = 1, tiny sizes, fewer variants, and
writes its report to bench/out/smoke/ (never over docs/); so does a run with `--out`, into
that directory (e.g. one part: `--only stack --stack-parts sweeps --out bench/out/sweeps`).
Whatever a smoke run leaves out, it says so on stderr and in that report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report
from bench.procs import log
from harness import REPO_ROOT

SECTIONS = ("local", "data", "image", "stack", "engines")
PARTS = {"stack": ("coldstart", "latency", "scale", "sweeps")}  # the stack section's result files


def plan(smoke: bool, repeats: int | None) -> dict[str, Any]:
    if smoke:
        k = repeats or 1
        return {
            "mode": "smoke",
            "local_repeats": k,
            "data_sizes": (1_000, 5_000),
            "data_repeats": k,
            "image_repeats": k,
            "coldstart_repeats": k,
            "latency_repeats": k,
            "latency_workers": ("default",),
            "scale_sizes": (1, 2),
            "scale_options": ("b",),
            "scale_shipped_n": 2,
            "scale_repeats": 1,
            "scale_worker": "default",
            "sweep_trials": 2,
            "sweep_parallel": (1, 2),
            "engines_burst": 2,
            "engines_repeats": 1,
            "engines_worker_limit": 2,
            "left_out": [
                "data scale: 1e3 and 5e3 rows only (full: 1e3, 1e5, 1e6)",
                "latency: shipped worker only; the tuned worker (1 s polling) is not measured",
                "scale: N = 1, 2 of option B only (full: N = 1, 4, 16 of A and B)",
                "scale: measured with the shipped worker's polling (5 s)",
                "sweeps: 2 trials at max_parallel 1, 2 (full: 8 trials at 1, 2, 4)",
                "engines: bursts of 2 runs, once per engine count (full: 8, twice)",
                f"k = {k} repeat(s) everywhere: medians of one value",
            ],
        }
    k = repeats or 5
    stack_k = min(3, repeats) if repeats else 3  # a stack batch costs minutes, not seconds
    return {
        "mode": "full",
        "local_repeats": k,
        "data_sizes": (1_000, 100_000, 1_000_000),
        "data_repeats": max(3, k // 2),
        "image_repeats": stack_k,
        "coldstart_repeats": stack_k,
        "latency_repeats": stack_k,
        "latency_workers": ("default", "tuned"),
        "scale_sizes": (1, 4, 16),
        "scale_options": ("a", "b"),
        "scale_repeats": stack_k,
        "scale_worker": "tuned",
        "scale_shipped_n": 4,
        "sweep_trials": 8,
        "sweep_parallel": (1, 2, 4),
        "engines_burst": 8,
        "engines_repeats": 2,
        "engines_worker_limit": 2,  # one per core of its host
        "left_out": [],
    }


def _save(out: Path, name: str, result: Any) -> None:
    (out / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))


def _machine(out: Path, now: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """The machine now, with when each section reported from `out` was measured.

    A run of some sections keeps the others' results, so the page says which run each
    comes from; the Docker engine it did not ask is the one the earlier run described."""
    previous_file = out / "machine.json"
    previous = json.loads(previous_file.read_text()) if previous_file.exists() else {}
    measured = previous.get("measured") or dict.fromkeys(SECTIONS, previous.get("when"))
    measured = {name: when for name, when in measured.items() if when and name not in sections}
    if now["docker"] is None and previous.get("docker"):
        docker_keys = ("docker", "compose", "docker_storage")
        now |= {key: previous[key] for key in docker_keys}
    return now | {"measured": measured | dict.fromkeys(sections, now["when"])}


def run(settings: dict[str, Any], sections: list[str], out: Path, keep_workdir: bool) -> list[str]:
    """Measure `sections`, each result saved as soon as it exists; the failed ones."""
    from bench.machine import describe
    from bench.stack import PROJECT, TAG

    for line in settings["left_out"]:
        log(f"SMOKE: left out: {line}")
    for name in (name for name in SECTIONS if name not in sections):
        log(f"section {name}: not run (--only); its previous JSON, if any, is reported")
    docker = any(name in ("image", "stack") for name in sections)
    _save(out, "machine", _machine(out, describe(PROJECT, docker=docker), sections))
    _save(
        out, "plan", {**settings, "sections": sections, "stack_project": PROJECT, "image_tag": TAG}
    )
    failed = []
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mltoy-bench-"))
    prepared: dict[str, Any] = {}
    try:
        for name in (name for name in SECTIONS if name in sections):
            section_start = time.monotonic()
            log(f"section {name}: start")
            # No stale result of an earlier run may stand in for this one.
            parts = [p for p in PARTS.get(name, ()) if p in settings.get("stack_parts", (p,))]
            for stale in (name, *parts):
                (out / f"{stale}.json").unlink(missing_ok=True)
                (out / f"{stale}-error.json").unlink(missing_ok=True)
            try:
                if name in ("image", "stack", "engines") and not prepared:
                    from bench.stack import prepare

                    prepared = prepare(workdir)
                    log(f"images ready in {prepared['prepare_s']:.0f}s: {prepared}")
                (workdir / name).mkdir()
                _measure(name, settings, workdir / name, out, prepared)
            except Exception as exc:
                traceback.print_exc()
                failed.append(name)
                _save(out, f"{name}-error", {"error": f"{type(exc).__name__}: {exc}"})
            log(f"section {name}: done in {time.monotonic() - section_start:.0f}s")
    finally:
        if keep_workdir:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    _save(out, "timing", {"total_s": time.monotonic() - started, "failed": failed})
    return failed


def _measure(
    name: str, settings: dict[str, Any], workdir: Path, out: Path, prepared: dict[str, Any]
) -> None:
    if name == "local":
        from bench import local

        _save(out, name, local.run_section(workdir, settings["local_repeats"]))
    elif name == "data":
        from bench import data_scale

        sizes, repeats = settings["data_sizes"], settings["data_repeats"]
        _save(out, name, data_scale.run_section(workdir, sizes, repeats))
    elif name == "image":
        from bench import image

        _save(out, name, image.run_section(prepared, workdir, settings["image_repeats"]))
    elif name == "engines":
        from bench import engines

        _save(out, name, engines.run_section(prepared, workdir, settings))
    else:
        from bench import containers
        from bench.stack import BenchStack

        stack = BenchStack.new(prepared, workdir)
        try:
            failed = containers.run_sections(stack, settings, lambda p, r: _save(out, p, r))
            if failed:
                raise RuntimeError(f"stack parts failed: {', '.join(failed)}")
        except Exception:
            stack.dump_logs(out / "stack-logs.txt")
            log(f"stack: container logs in {out / 'stack-logs.txt'}")
            raise
        finally:
            log("stack: down -v")
            stack.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, k=1, minutes")
    parser.add_argument(
        "--repeats", type=int, help="k: repeats per measurement (image and stack: at most 3)"
    )
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--stack-parts",
        help=f"parts of the stack section, comma-separated: {', '.join(PARTS['stack'])} "
        "(default: all)",
    )
    parser.add_argument(
        "--out", type=Path, help="results and report directory (default: bench/out/full|smoke)"
    )
    parser.add_argument("--report-only", action="store_true", help="re-render from the JSON")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp workspaces")
    args = parser.parse_args(argv)
    out = args.out or (REPO_ROOT / "bench" / "out" / ("smoke" if args.smoke else "full"))
    sections = args.only.split(",") if args.only else list(SECTIONS)
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    failed = []
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        settings = plan(args.smoke, args.repeats)
        if args.stack_parts:
            settings["stack_parts"] = args.stack_parts.split(",")
            if unknown := set(settings["stack_parts"]) - set(PARTS["stack"]):
                parser.error(f"unknown stack part(s): {', '.join(sorted(unknown))}")
        failed = run(settings, sections, out, args.keep_workdir)
    # A smoke run, or one into a directory of its own (--out), never writes over docs/.
    docs = out if args.smoke or args.out else REPO_ROOT / "docs"
    report.write(out, docs / "benchmarks.md", docs / "benchmarks.png")
    log(f"report: {docs / 'benchmarks.md'} (+ benchmarks.png)")
    if failed:
        log(f"FAILED sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
