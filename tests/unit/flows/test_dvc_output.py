import pytest

from flows.dvc_output import RAN, RESTORED, SKIPPED, remote_unreachable, stage_outcomes


def test_outcomes_are_read_from_dvc_repro_output():
    lines = [
        "'data/raw/iris.csv.dvc' didn't change, skipping",
        "Stage 'prepare' didn't change, skipping",
        "Running stage 'train':",
        "> python -m mltoy.cli train",
        "Stage 'evaluate' is cached - skipping run, checking out outputs",
        "Updating lock file 'dvc.lock'",
    ]
    assert stage_outcomes(lines) == {"prepare": SKIPPED, "train": RAN, "evaluate": RESTORED}


def test_no_stage_lines_means_no_outcomes():
    assert stage_outcomes(["Data and pipelines are up to date."]) == {}


@pytest.mark.parametrize(
    "error",
    [
        'ERROR: unexpected error - Could not connect to the endpoint URL: "http://s3:9000/mltoy"',
        "ERROR: failed to connect to s3 (mltoy/dvc/files/md5) - Connect timeout on endpoint URL",
        "ERROR: unexpected error - Cannot connect to host storage.googleapis.com:443",
    ],
)
def test_an_unreachable_remote_is_told_apart(error):
    assert remote_unreachable(["Running stage 'prepare':", error])


@pytest.mark.parametrize(
    "lines",
    [
        ["ERROR: failed to reproduce 'train': failed to run: python -m mltoy.cli, exited with 2"],
        ["Could not connect to the endpoint URL, said a stage, not DVC"],
        [],
    ],
)
def test_other_failures_are_not_blamed_on_the_remote(lines):
    assert not remote_unreachable(lines)
