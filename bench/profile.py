"""Where a no-op flow run's time goes: interpreter, imports, Prefect, DVC, stage code.

One no-op run per option in a new interpreter, as `python -m flows.cli` runs it (no
heartbeats: a flow container's run sends them, and joins their thread after its final
state), driven by `python -m bench.profile_driver OPTION PROJECT OUT`:

- wall clock marks split it into interpreter start, the top-level imports, the flow call,
  and exit (Prefect flushes its log and event queues there);
- cProfile over the flow call, in the main thread and in every thread started during it
  (option B's stages run in the task runner's threads), gives the DVC and stage-code
  parts by their cumulative time; the rest of the flow call is Prefect's engine and API;
- `python -X importtime` gives each top-level package's own import time.
"""

from __future__ import annotations

import json
import pstats
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, child_env, run_timed
from harness import REPO_ROOT

# (label, file suffix, function): cumulative time of these calls inside the flow call.
ANCHORS = {
    "a": [
        ("dvc repro subprocess (waiting on DVC)", "flows/shell.py", "stream"),
    ],
    "b": [
        ("DVC repo open (content store)", "flows/content_store.py", "__init__"),
        ("cache keys: hashing deps, params", "flows/option_b.py", "stage_cache_key"),
        ("checking/restoring outputs (md5)", "flows/content_store.py", "restore"),
    ],
}
COMMON = [
    ("stage code (mltoy)", "mltoy/cli.py", "run"),
    ("reading metrics", "flows/reporting.py", "read_metrics"),
]
IMPORT_FUNCS = {"_find_and_load", "_handle_fromlist"}


# ---------------------------------------------------------------- analysis (pure)


def _calls(stats: dict, suffix: str, name: str) -> list[tuple[tuple, float]]:
    """(cProfile key, cumulative seconds) of the function `name` defined in a file
    ending in `suffix`."""
    return [
        (key, ct)
        for key, (_cc, _nc, _tt, ct, _callers) in stats.items()
        if key[2] == name and key[0].replace("\\", "/").endswith(suffix)
    ]


def anchor_times(stats: dict, anchors: list[tuple[str, str, str]]) -> dict[str, float]:
    """{label: cumulative seconds minus the imports made directly inside it}."""
    imports = [
        callers
        for (filename, _line, func), (*_, callers) in stats.items()
        if func in IMPORT_FUNCS and "importlib" in filename
    ]
    found: dict[str, float] = {}
    for label, suffix, name in anchors:
        total = 0.0
        for key, ct in _calls(stats, suffix, name):
            total += ct - sum(callers[key][3] for callers in imports if key in callers)
        found[label] = max(total, 0.0)
    return found


def import_time(stats: dict) -> float:
    """Cumulative time in the import machinery (outermost calls only, as cProfile counts)."""
    return sum(ct for key, ct in _calls(stats, "", "_find_and_load") if "importlib" in key[0])


# Parts of Prefect's engine worth naming (cumulative, main thread; they may nest).
ENGINE_PARTS = [
    ("create the flow run (API)", "prefect/flow_engine.py", "create_flow_run"),
    ("start the run: context, client, first states", "prefect/flow_engine.py", "initialize_run"),
    ("flow state changes (API)", "prefect/flow_engine.py", "set_state"),
    ("heartbeat thread start and join", "prefect/flow_engine.py", "_send_heartbeats"),
    ("serialize the parameters", "prefect/flows.py", "serialize_parameters"),
    ("metrics artifact (API)", "prefect/artifacts.py", "create_table_artifact"),
    ("all HTTP requests of the main thread", "prefect/client/base.py", "send"),
]


def engine_parts(stats: dict) -> list[dict[str, Any]]:
    """Cumulative seconds of named parts of Prefect's engine (absent ones left out)."""
    rows = []
    for label, suffix, name in ENGINE_PARTS:
        found = [ct for _key, ct in _calls(stats, suffix, name)]
        if found:
            rows.append({"part": label, "cumulative_s": max(found)})
    return rows


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def imports_by_package(importtime_stderr: str, count: int = 7) -> list[dict[str, Any]]:
    """Own import time summed per top-level package (from `python -X importtime`)."""
    own: dict[str, float] = defaultdict(float)
    for line in importtime_stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            own[match.group(4).split(".")[0]] += int(match.group(1)) / 1e6
    total = sum(own.values()) or 1.0
    ranked = sorted(own.items(), key=lambda item: -item[1])
    rows = [{"package": name, "share": seconds / total} for name, seconds in ranked[:count]]
    rest = sum(seconds for _, seconds in ranked[count:])
    rows.append({"package": "(other)", "share": rest / total})
    return rows


def breakdown(option: str, marks: dict[str, float], total_s: float, stats: dict) -> dict[str, Any]:
    anchors = anchor_times(stats, ANCHORS[option] + COMMON)
    lazy_imports = import_time(stats)
    engine = marks["flow_s"] - lazy_imports - sum(anchors.values())
    parts = {
        "interpreter start": marks["startup_s"],
        "interpreter exit (incl. Prefect flushing its log and event queues)": max(
            total_s
            - marks["startup_s"]
            - marks["imports_s"]
            - marks["flow_s"]
            - marks.get("profiler_dump_s", 0.0),
            0.0,
        ),
        "top-level imports (the flow module and all it imports)": marks["imports_s"],
        "imports during the flow call": lazy_imports,
        **anchors,
        "Prefect engine + API calls (rest of the flow call)": max(engine, 0.0),
    }
    # The profiler writing its stats is no part of a real run: left out of the total.
    return {"total_s": total_s - marks.get("profiler_dump_s", 0.0), "parts": parts}


# ---------------------------------------------------------------- the section part


def profile_noop(option: str, project: Path, prefect_env: dict[str, str], outdir: Path) -> dict:
    outdir.mkdir(parents=True, exist_ok=True)
    prefix = outdir / f"noop-{option}"
    # The driver is bench's own module: importable from the repo root.
    env = child_env({**prefect_env, "PYTHONPATH": str(REPO_ROOT)})
    env["BENCH_LAUNCHED_AT"] = repr(time.time())
    total, _ = run_timed(
        [PYTHON, "-m", "bench.profile_driver", option, str(project), str(prefix)],
        cwd=project,
        env=env,
        log_file=outdir / "profile.log",
    )
    marks = json.loads(Path(f"{prefix}.json").read_text())
    if any(outcome not in ("skipped", "restored") for outcome in marks["stages"].values()):
        raise AssertionError(f"profiled run of {option} was not a no-op: {marks['stages']}")
    stats = pstats.Stats(f"{prefix}.prof").stats  # type: ignore[attr-defined]
    module = "flows.option_a" if option == "a" else "flows.option_b"
    _, importtime = run_timed([PYTHON, "-X", "importtime", "-c", f"import {module}"], project, env)
    result = breakdown(option, marks, total, stats)
    result["imports_by_package"] = imports_by_package(importtime.stderr)
    main_stats = pstats.Stats(f"{prefix}.main.prof").stats  # type: ignore[attr-defined]
    result["engine_parts"] = engine_parts(main_stats)
    result["threads_profiled"] = marks["threads_profiled"]
    return result
