"""`python -m bench.profile_driver OPTION PROJECT OUT`: one no-op run, profiled (bench/profile.py).

Its own module, importing only the standard library before its first mark, so that the
interpreter-start mark holds no import of the flows' (bench.profile imports Prefect's
client through harness). It exits as `python -m flows.cli` does (flows.cli.exit_code).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path


def drive(option: str, project: str, out: str) -> None:
    wall0 = time.time()
    started = float(os.environ.get("BENCH_LAUNCHED_AT", wall0))  # set by the parent
    t0 = time.perf_counter()
    from flows.cli import local_settings  # as `python -m flows.cli` has it: no heartbeats

    if option == "a":
        from flows.option_a import pipeline_a as pipeline
    else:
        from flows.option_b import pipeline_b as pipeline
    t1 = time.perf_counter()

    thread_profiles: list[cProfile.Profile] = []

    def start_thread_profile(*_: object) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile()
        thread_profiles.append(profiler)
        profiler.enable()

    threading.setprofile(start_thread_profile)
    main = cProfile.Profile()
    main.enable()
    with local_settings():
        result = pipeline(project_dir=project)
    main.disable()
    threading.setprofile(None)
    t2 = time.perf_counter()

    main.dump_stats(f"{out}.main.prof")
    stats = pstats.Stats(main)
    for profiler in thread_profiles:
        with suppress(TypeError, ValueError):  # a thread that recorded nothing
            stats.add(profiler)
    stats.dump_stats(f"{out}.prof")
    t3 = time.perf_counter()
    Path(f"{out}.json").write_text(
        json.dumps(
            {
                "startup_s": wall0 - started,
                "imports_s": t1 - t0,
                "flow_s": t2 - t1,
                "profiler_dump_s": t3 - t2,  # the profiler's own work, not a real run's
                "threads_profiled": len(thread_profiles),
                "stages": result["stages"],
            }
        )
    )


if __name__ == "__main__":
    drive(*sys.argv[1:4])
    from flows.cli import exit_code

    sys.exit(exit_code(0))
