"""bench's pure helpers: summaries of repeats, the split of a run's latency, and what
the stack driver reads from a run's logs."""

from __future__ import annotations

import pytest

from bench.data_scale import stage_marks
from bench.profile import imports_by_package
from bench.stats import ratio, summarize
from bench.timeline import split
from harness.stack import stage_outcomes


def test_summarize_gives_median_min_max_and_skips_missing_values():
    summary = summarize([3.0, None, 1.0, 2.0, 10.0])
    assert summary == {
        "n": 4,
        "median": 2.5,
        "min": 1.0,
        "max": 10.0,
        "values": [3.0, 1.0, 2.0, 10.0],
    }
    assert summarize([])["median"] is None


def test_ratio_is_of_medians_and_none_when_unmeasured():
    assert ratio(summarize([2.0, 4.0, 6.0]), summarize([1.0, 2.0, 3.0])) == 2.0
    assert ratio(summarize([1.0]), summarize([])) is None
    assert ratio(None, summarize([1.0])) is None


def test_split_uses_pending_container_and_running_marks():
    states = [("SCHEDULED", 100.0), ("PENDING", 103.0), ("RUNNING", 110.0), ("COMPLETED", 118.0)]
    phases = split(100.0, states, {"create": 104.0, "start": 104.5})
    assert phases == pytest.approx(
        {"queue_wait": 3.0, "submit": 1.0, "container_start": 6.0, "flow_run": 8.0, "total": 18.0}
    )


def test_split_without_docker_events_keeps_pending_to_running_as_one_phase():
    states = [("SCHEDULED", 0.0), ("PENDING", 1.0), ("RUNNING", 4.0), ("FAILED", 5.0)]
    phases = split(0.0, states, None)
    assert phases["submit"] is None and phases["container_start"] == 3.0
    assert phases["flow_run"] is None and phases["total"] is None  # never Completed


def test_stage_marks_reads_dvc_repro_output_times():
    lines = [
        (1.0, "Running stage 'prepare':"),
        (3.0, "> python -m mltoy.cli prepare"),
        (4.0, "Running stage 'train':"),
        (9.0, "Running stage 'evaluate':"),
    ]
    assert stage_marks(lines, start=0.0, end=10.0) == {
        "dvc_startup": 1.0,
        "prepare": 3.0,
        "train": 5.0,
        "evaluate": 1.0,
    }


def test_imports_by_package_sums_own_time_per_top_level_package():
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       300 |        300 |     prefect.settings",
            "import time:       100 |        400 |   prefect",
            "import time:       600 |        600 | dvc",
        ]
    )
    rows = imports_by_package(stderr, count=1)
    assert [row["package"] for row in rows] == ["dvc", "(other)"]
    assert [row["share"] for row in rows] == pytest.approx([0.6, 0.4])


def test_stage_outcomes_read_from_logs_and_cli_output():
    lines = [
        "Running stage 'prepare':",
        "stage prepare: skipped",
        "stage train wrote models/model.joblib",
        "stage train: ran",
        "stage evaluate: command exited with 2: mltoy: error: ...",
        "  stage evaluate: restored  ",
    ]
    assert stage_outcomes(lines) == {"prepare": "skipped", "train": "ran", "evaluate": "restored"}
