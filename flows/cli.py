"""`python -m flows.cli a|b|sweep`: run either option once, or a parameter sweep of
either, here, with a local Prefect.

Without PREFECT_API_URL, Prefect starts a temporary local server for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from flows.sweep_grid import DEFAULT_GRID, MODES
from mltoy.errors import MltoyInputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows.cli", description=__doc__)
    sub = parser.add_subparsers(dest="option", required=True, metavar="{a,b,sweep}")
    for name, help_text in (
        ("a", 'option A, "Prefect operates DVC pipeline" (dvc repro in a task)'),
        ("b", 'option B, "Prefect owned stage DAG" (one task per dvc.yaml stage)'),
    ):
        option = sub.add_parser(name, help=help_text, description=help_text)
        option.add_argument("--project-dir", help="directory holding dvc.yaml (default: .)")
        option.add_argument("--params", metavar="PATH", help="params file to run with")
        option.add_argument(
            "--fail-once", action="store_true", help="fail the first attempt to show a retry"
        )
        option.add_argument(
            "--show-metrics",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="log the metrics in a 'metrics summary' task (default: on)",
        )
        option.add_argument(
            "--remote",
            action=argparse.BooleanOptionalAction,
            default=False,
            help="pull from / push to the DVC remote around the run (default: off)",
        )
        option.add_argument(
            "--refresh", action="store_true", help="option B: ignore cached stage results"
        )
        option.add_argument("--json", action="store_true", help="print the result as JSON")
    add_sweep_parser(sub)
    return parser


def add_sweep_parser(sub: Any) -> None:
    help_text = "a parameter sweep: one run per combination of the -S values, a leaderboard"
    sweep_parser = sub.add_parser("sweep", help=help_text, description=help_text)
    sweep_parser.add_argument(
        "-S",
        "--set-param",
        dest="overrides",
        action="append",
        metavar="KEY=VALUES",
        help="as `dvc exp run -S`: train.C=0.1,1 or choice(...)/range(...); repeat for a "
        f"grid (default: {' '.join(f'-S {o}' for o in DEFAULT_GRID)})",
    )
    sweep_parser.add_argument(
        "--option", dest="trial_option", choices=("a", "b"), default="a", help="default: a"
    )
    sweep_parser.add_argument("--metric", default="accuracy", help="rank by (default: accuracy)")
    sweep_parser.add_argument("--mode", choices=MODES, default="max", help="default: max")
    sweep_parser.add_argument("--project-dir", help="directory holding dvc.yaml (default: .)")
    sweep_parser.add_argument("--json", action="store_true", help="print the rows as JSON")


def print_leaderboard(rows: list[dict[str, Any]], metric: str, mode: str) -> None:
    from flows.sweep import table_rows

    for row in table_rows(rows, metric, mode):
        print("  ".join(f"{key}={value}" for key, value in row.items() if value not in ("", None)))


def run_sweep(args: argparse.Namespace) -> int:
    from flows.sweep import sweep

    try:
        rows = sweep(
            overrides=args.overrides or list(DEFAULT_GRID),
            option=args.trial_option,
            metric=args.metric,
            mode=args.mode,
            project_dir=args.project_dir,
            local=True,
        )
    except MltoyInputError as exc:
        print(f"flows: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # every trial failed: the leaderboard artifact says why
        print(f"flows: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
    else:
        print_leaderboard(rows, args.metric, args.mode)
    return 0


@contextlib.contextmanager
def local_settings() -> Iterator[None]:
    """No flow-run heartbeats here, unless the settings ask for them (the environment's
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY, a profile, prefect.toml).

    They serve the stack's zombie-run automation (prefect.yaml sets 30 s), which a local
    server does not have. Yet each run pays for Prefect's default (180 s) at its end:
    Prefect 3.8.8 joins the heartbeat thread, which sleeps in 1 s steps
    (`flow_engine._send_heartbeats`), so a no-op option A run waited up to a second for
    nothing (docs/benchmarks.md, section 1). No setting can say "none" (it parses only
    integers), hence this override.
    """
    from prefect.settings import Settings, temporary_settings

    if "heartbeat_frequency" in Settings().flows.model_fields_set:  # the user's, read afresh
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with local_settings():
        return run(args)


def run(args: argparse.Namespace) -> int:
    if args.option == "sweep":
        return run_sweep(args)
    common = dict(
        project_dir=args.project_dir,
        params_file=args.params,
        fail_once=args.fail_once,
        show_metrics=args.show_metrics,
    )
    # Only the flow asked for is imported: each brings its own modules.
    try:
        if args.option == "a":
            from flows.option_a import pipeline_a

            result = pipeline_a(**common, pull=args.remote, push=args.remote)
        else:
            from flows.option_b import pipeline_b

            result = pipeline_b(**common, use_remote=args.remote, refresh=args.refresh)
    except MltoyInputError as exc:
        print(f"flows: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the flow's own logs carry the traceback
        print(f"flows: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for stage, outcome in result["stages"].items():
            print(f"stage {stage}: {outcome}")
        for name, value in result["metrics"].items():
            print(f"{name}: {value}")
    return 0


def exit_code(code: int) -> int:
    """`code`, after freezing every object still alive (gc.freeze).

    At shutdown the interpreter runs its cyclic garbage collector over every object
    Prefect, DVC and pydantic made (about 200,000), several times: half a second or more
    at every exit (docs/benchmarks.md, section 1), for objects the process drops anyway.
    Frozen ones are skipped. atexit handlers (Prefect's log and event flush) still run.
    """
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(exit_code(main()))
