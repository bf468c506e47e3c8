import subprocess
import sys

import pytest
import yaml

from flows.dvc_output import (
    RAN,
    RESTORED,
    SKIPPED,
    failed_on_bad_input,
    remote_unreachable,
    stage_outcomes,
)
from flows.dvc_remote import describe_remote, is_unreachable, project_remote
from flows.option_a import command_error
from mltoy.errors import EXIT_BAD_INPUT
from tests.support import use_unreachable_s3_remote


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


@pytest.mark.parametrize(
    "error",
    [
        # botocore, as s3fs raises it through DVC's objects (option B's content store)
        'EndpointConnectionError: Could not connect to the endpoint URL: "http://s3:9000/"',
        "ConnectTimeoutError: Connect timeout on endpoint URL: http://s3:9000/",
        # aiohttp under gcsfs
        "ClientConnectorError: Cannot connect to host storage.googleapis.com:443",
    ],
)
def test_the_same_predicate_reads_exceptions_of_the_store_libraries(error):
    assert is_unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        "ClientError: An error occurred (AccessDenied) when calling the PutObject operation",
        "FileNotFoundError: mltoy/dvc/files/md5/01/23",
    ],
)
def test_a_refusal_or_a_missing_object_is_not_unreachable(error):
    assert not is_unreachable(error)


def test_the_remote_is_described_from_dvc_config_levels(project):
    """Option A's failure names the remote as option B's does: from DVC's merged config."""
    assert project_remote(project).startswith("'local' (")  # the copy's .dvc/config
    endpoint = use_unreachable_s3_remote(project)  # written to .dvc/config.local
    assert project_remote(project) == f"'storage' (s3://mltoy/dvc at {endpoint})"
    assert describe_remote({"core": {}, "remote": {}}) == "the DVC remote"


@pytest.mark.parametrize("status", [EXIT_BAD_INPUT, 1])
def test_dvc_repro_reports_a_stage_s_exit_status_as_option_a_reads_it(tmp_path, status):
    """The text contract with DVC: a stage exiting EXIT_BAD_INPUT is bad input (no retry),
    any other failure is not. Checked on the installed DVC's own output."""
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    command = f'python -c "import sys; sys.exit({status})"'
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"check": {"cmd": command, "outs": ["never"]}}})
    )
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=tmp_path, capture_output=True, text=True
    )
    lines = (repro.stdout + repro.stderr).splitlines()
    error = command_error("repro", repro.returncode, lines)
    assert error.bad_input is (status == EXIT_BAD_INPUT), lines
    assert "failed to reproduce 'check'" in str(error)


def test_only_a_failed_command_exiting_with_the_bad_input_status_is_bad_input():
    line = (
        "ERROR: failed to reproduce 'train': failed to run: python -m mltoy.cli train, exited with"
    )
    assert failed_on_bad_input(f"{line} {EXIT_BAD_INPUT}")
    assert not failed_on_bad_input(f"{line} {EXIT_BAD_INPUT}0")
    assert not failed_on_bad_input(f"ERROR: unexpected error - dvc exited with {EXIT_BAD_INPUT}")
