"""bench's report: a page and a chart rendered from the results alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report
from bench.stats import summarize


def rendered(tmp_path: Path, **results: Any) -> str:
    """The page rendered from these results (one JSON file each, by section name)."""
    for name, result in results.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(result))
    markdown = tmp_path / "benchmarks.md"
    report.write(tmp_path, markdown, tmp_path / "benchmarks.png")
    return markdown.read_text()


def local_results() -> dict:
    def s(*values: float) -> dict:
        return summarize(values)

    return {
        "repeats": 3,
        "noop": {
            "dvc": s(1.0, 1.1, 0.9),
            "a_cli": s(3.0, 3.2, 2.9),
            "b_cli": s(2.0, 2.1, 2.2),
            "a_inproc": s(1.2, 1.3, 1.1),
            "b_inproc": s(0.5, 0.6, 0.4),
        },
        "full": {
            "dvc": s(4.0, 4.1, 3.9),
            "a_cli": s(6.0, 6.2, 5.9),
            "b_cli": s(3.0, 3.1, 3.2),
            "a_inproc": s(4.2, 4.3, 4.1),
            "b_inproc": s(1.5, 1.6, 1.4),
        },
        "profile": {},
    }


def test_report_renders_from_results_and_says_what_was_not_measured(tmp_path: Path):
    (tmp_path / "local.json").write_text(json.dumps(local_results()))
    (tmp_path / "image-error.json").write_text('{"error": "RuntimeError: no docker"}')
    markdown, png = tmp_path / "benchmarks.md", tmp_path / "benchmarks.png"
    report.write(tmp_path, markdown, png)
    text = markdown.read_text()
    assert "| bare `dvc repro` | 1.00 s [0.90–1.10] | 1.00x |" in text
    assert "3.00x as a new process" in text and "**missed**" in text  # A: 3.0 / 1.0 > 1.5
    assert "Not measured: the section failed** (`RuntimeError: no docker`)" in text
    assert "## 5. Scale\n\n**Not measured in this run.**" in text
    assert "![benchmark summary](benchmarks.png)" in text
    assert png.read_bytes().startswith(b"\x89PNG")


def test_report_without_results_draws_no_chart_and_claims_nothing(tmp_path: Path):
    markdown, png = tmp_path / "benchmarks.md", tmp_path / "benchmarks.png"
    report.write(tmp_path, markdown, png)
    text = markdown.read_text()
    assert not png.exists() and "![benchmark summary]" not in text
    assert text.count("**Not measured in this run.**") == 8
    assert "**met**" not in text and "**missed**" not in text
    assert "Every measured target was met." in text


def batch(option: str, n: int, limit: int, throughput: float, locked: int) -> dict:
    latency = summarize([30.0] * n)
    return {
        "option": option,
        "n": n,
        "concurrency_limit": limit,
        "throughput_per_min": throughput,
        "latency_s": latency,
        "peak_working_set_mb": summarize([300.0] * n),
        "peak_rss_mb": summarize([290.0] * n),
        "max_concurrent": min(n, limit),
        "machine_busy": 0.5,
        "cpu_s": {"flow containers": 100.0, "prefect-server": 60.0, "worker": 5.0},
        "failures": [],
        "log_errors": {"database_locked": locked, "worker_not_polled": 0},
    }


def test_scale_batches_are_pooled_and_a_locked_database_is_named_as_the_bound(tmp_path: Path):
    scale = {
        "repeats": 2,
        "concurrency_limit": 32,
        "worker": "tuned",
        "shipped_n": 4,
        "batches": [
            batch("b", 4, 1, 3.0, 0),
            batch("a", 16, 32, 6.0, 0),
            batch("a", 16, 32, 8.0, 5),
            batch("b", 16, 32, 9.0, 2),
        ],
    }
    (tmp_path / "scale.json").write_text(json.dumps(scale))
    groups = report.scale_groups(scale["batches"])
    assert [(g["option"], g["n"], g["limit"], g["repeats"]) for g in groups] == [
        ("b", 4, 1, 1),
        ("a", 16, 32, 2),
        ("b", 16, 32, 1),
    ]
    assert groups[1]["throughput"]["median"] == 7.0
    assert groups[1]["log_errors"]["database_locked"] == 5
    assert groups[1]["stack_share"] == 65.0 / 165.0
    text = report.render(report.load(tmp_path), None)
    assert "Not bound by the cores" in text and "The same bound" in text  # A first, then B
    assert "| Zero failed runs at N = 16 | 0 failed of 48 runs at N = 16" in text
    assert "As shipped (`concurrency_limit: 1`), 4 runs of option B" in text


def test_the_sweeps_section_compares_each_batch_with_sequential_runs(tmp_path: Path):
    def batch(label: str, wall: float, ran: int, failures: list[str]) -> dict:
        return {
            "label": label,
            "trials": 8,
            "wall_s": wall,
            "runs_per_min": 480 / wall,
            "machine_busy": 0.9,
            "trials_that_ran_a_stage": ran,
            "failures": failures,
            "wall_vs_sequential": wall / 200.0,
        }

    sweeps = {
        "option": "a",
        "trials": 8,
        "max_parallel": [1, 2, 4],
        "batches": [
            batch("sequential", 200.0, 8, []),
            batch("max_parallel 2", 120.0, 8, ["trial 3: Failed: train.C"]),
            batch("max_parallel 2, again", 60.0, 0, []),
        ],
        "cached_vs_first": 0.5,
    }
    text = rendered(tmp_path, sweeps=sweeps)
    assert "## 7. Parameter sweeps" in text
    assert "| max_parallel 2 | 8 | 120.0 s | 0.60x | 4.00 | 90% | 8 | 1 |" in text
    assert "| max_parallel 2, again | 8 | 60.0 s | 0.30x | 8.00 | 90% | 0 | 0 |" in text
    assert "raised to 4 for the sweeps" in text
    assert "The cached rerun took 0.50x the time" in text
    assert "- max_parallel 2: trial 3: Failed: train.C" in text


def test_the_engines_section_shows_each_burst_and_the_ratio(tmp_path: Path):
    burst = {"n": 8, "wall_s": 80.0, "machine_busy": 0.97, "failures": []}
    engines = {
        "n": 8,
        "repeats": 1,
        "worker_limit": 2,
        "up_s": 60.0,
        "push_s": 30.0,
        "join_s": 45.0,
        "two_vs_one": 0.95,
        "batches": [
            {
                **burst,
                "label": "one engine",
                "engines": 1,
                "runs_per_min": 6.0,
                "runs_per_engine": [8],
            },
            {
                **burst,
                "label": "two engines",
                "engines": 2,
                "runs_per_min": 5.7,
                "runs_per_engine": [5, 3],
            },
        ],
    }
    text = rendered(tmp_path, engines=engines)
    section = text.split("## 8. Workers on two Docker engines")[1].split("\n## ")[0]
    assert "| two engines | 8 | 80.0 s | 5.70 | 5 + 3 | 97% | 0 |" in section
    assert "Two engines gave 0.95x the runs/min of one" in section
    assert "`make worker-join` on the empty second engine 45 s" in section


def test_the_local_targets_of_issue_15_are_judged_on_new_processes(tmp_path: Path):
    results = local_results()
    results["noop"] |= {"dvc_git": summarize([1.2, 1.3]), "make_run": summarize([3.3, 3.4])}
    results["full"] |= {"dvc_git": summarize([4.2]), "make_run": summarize([6.5])}
    mib = 2**20
    results["peak_rss_bytes"] = {
        "noop": {
            "dvc": summarize([60 * mib]),
            "a_cli": summarize([150 * mib, 160 * mib]),
            "b_cli": summarize([170 * mib]),
            "make_run": summarize([150 * mib, 210 * mib]),  # the largest run counts
        }
    }
    k = report.key_numbers({"local": results}, [])
    ok = report.judge(k)
    assert round(k["make_run_noop_ratio"], 2) == 3.35 and k["noop_rss_mib"] == 210.0
    assert ok["a_noop"] is False  # 3.05x > 2.5x
    assert ok["b_noop"] is False  # faster than A (2.1 s < 3.05 s), but 2.1x > 2x
    assert ok["make_run"] is False and ok["noop_rss"] is False
    text = rendered(tmp_path, local=results)
    assert "| `make run` with nothing to do (second and later runs) within 3.0x" in text
    assert "3.35x (3.35 s; 2.68x of bare `dvc repro` in the same kind of Git clone" in text
    assert "A 160 MiB, B 170 MiB, `make run` 210 MiB" in text
    assert "| `make run` in a Git clone (its local server already running) | 3.35 s" in text


def latency_results(warm_total: float) -> dict:
    """Section 2's results, the shipped worker only: warm runs with their task runs."""

    def record(flow_run: float) -> dict:
        phases = {"queue_wait": 2.0, "submit": 0.1, "container_start": 3.8}
        tasks = [
            {"name": "mlflow tracking", "seconds": 3.0, "state": "Completed"},
            {"name": "dvc repro", "seconds": 2.0, "state": "Completed"},
            {"name": "dvc push", "seconds": 1.0, "state": "Completed"},
        ]
        return {"phases": {**phases, "flow_run": flow_run, "total": warm_total}, "tasks": tasks}

    records = [record(7.0), record(7.5), record(8.0)]
    phases = ("queue_wait", "submit", "container_start", "flow_run")
    cell = {
        "total": summarize([warm_total] * 3),
        **{p: summarize([r["phases"][p] for r in records]) for p in phases},
        "stages": [],
        "failures": [],
    }
    return {
        "repeats": 3,
        "workers": ["default"],
        "results": {"default": {"a_warm": cell, "b_warm": cell, "runs": {"a_warm": records}}},
    }


def test_a_missed_warm_run_target_is_judged_shipped_and_split_into_phases_and_tasks(
    tmp_path: Path,
):
    page = rendered(tmp_path, latency=latency_results(warm_total=12.9))
    row = next(line for line in page.splitlines() if line.startswith("| Warm containerized"))
    assert "<= 6 s with the shipped settings" in row and "A 12.9 s, B 12.9 s" in row
    assert row.endswith("**missed** |")
    bullet = next(line for line in page.splitlines() if line.startswith("- **Warm option A"))
    assert "container start 3.8 s, flow run 7.5 s" in bullet
    # Tasks by median, largest first; what the flow run spent outside them: 7.5 - 6.0.
    assert "mlflow tracking 3.00, dvc repro 2.00, dvc push 1.00" in bullet
    assert "outside any task 1.5 s" in bullet


def test_a_met_warm_run_target_says_so(tmp_path: Path):
    page = rendered(tmp_path, latency=latency_results(warm_total=5.5))
    assert "- Warm option A with the shipped settings: 5.5 s <= 6 s: met." in page
    assert "- **Warm option" not in page


def test_a_partial_run_says_when_each_section_was_measured(tmp_path: Path):
    """`--only local` after a full run: the page keeps the full run's Docker engine and
    names both runs' dates with their sections."""
    from bench.__main__ import SECTIONS, _machine

    full = {"when": "2026-12-08 00:50 UTC", "docker": "20.10.24", "compose": "2.40.3"}
    (tmp_path / "machine.json").write_text(json.dumps(full | {"docker_storage": "overlay2"}))
    now = {"when": "2026-12-08 03:13 UTC", "docker": None, "compose": None}
    machine = _machine(tmp_path, now | {"docker_storage": "not asked"}, ["local"])
    assert machine["docker"] == "20.10.24" and machine["docker_storage"] == "overlay2"
    assert machine["measured"] == dict.fromkeys(SECTIONS, full["when"]) | {"local": now["when"]}
    (tmp_path / "machine.json").unlink()
    text = rendered(tmp_path, machine=machine, local=local_results())
    assert "| Docker | engine 20.10.24, compose 2.40.3, overlay2 |" in text
    assert (
        "; sections measured 2026-12-08 03:13 UTC: local; "
        "2026-12-08 00:50 UTC: data, engines, image, stack (ratios" in text
    ), text[:1500]
    # a later full run measures every section again: one date, nothing more said
    again = _machine(tmp_path, now | {"docker": "20.10.24"}, list(SECTIONS))
    assert set(again["measured"].values()) == {now["when"]}
