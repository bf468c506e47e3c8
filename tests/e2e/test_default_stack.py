"""The default stack: `make up` in a fresh clone with no optional setting at all, i.e.
without compose.mlflow.yaml and without a notification URL, as most users first run it.

Its own compose project, ports and names; brought up, used for one run, taken down with
`down -v` before the suite's own stack (which has MLflow) comes up, so nothing else runs
meanwhile (tests/e2e/conftest.py: ORDER).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.stack import remove_leftovers
from tests.e2e.stack import PROJECT, TEST_LIMITS, Stack, read_env_file, stage_outcomes

DEFAULT_PROJECT = f"{PROJECT}-default"


@pytest.fixture(scope="module")
def default_stack(
    prepared: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    remove_leftovers(DEFAULT_PROJECT)
    files = [name for name in prepared["COMPOSE_FILES"].split(":") if "mlflow" not in name]
    stack = Stack.clone(
        prepared,
        tmp_path_factory.mktemp("e2e-default") / "mltoy",
        project=DEFAULT_PROJECT,
        COMPOSE_FILE=":".join(files),
        **TEST_LIMITS,
    )
    try:
        up = stack.make_up()
        if up.returncode != 0:
            said = (up.stdout + up.stderr)[-3000:]
            logs = stack.dump_logs(stack.project_dir / "compose.log")[-3000:]
            pytest.fail(f"make up failed ({up.returncode}):\n{said}\n{logs}")
        with stack.connected():
            yield stack
    finally:
        stack.down()
    assert not stack.leftovers(), stack.leftovers()


def test_make_up_with_no_optional_setting_brings_up_the_default_stack(default_stack: Stack):
    services = set(default_stack.compose("ps", "-a", "--format", "{{.Service}}").stdout.split())
    assert {"prefect-server", "worker", "git", "s3", "deploy"} <= services
    assert not {name for name in services if "mlflow" in name}, services
    printed = default_stack.up_output.stdout
    assert "Prefect UI: http://127.0.0.1:" in printed and "MLflow UI" not in printed
    assert read_env_file(default_stack.env_file)["MLTOY_NOTIFY_URL"] == ""
    deploy_log = default_stack.compose("logs", "--no-color", "deploy").stdout
    assert "failure notifications off" in deploy_log, deploy_log[-2000:]


def test_a_run_completes_untracked(default_stack: Stack):
    """No MLflow: the deployments pass an empty tracking URI, and the run neither tracks
    nor says anything of MLflow."""
    deployment = default_stack.api.read_deployment(default_stack.deployment_id("a"))
    assert deployment.job_variables["env"].get("MLFLOW_TRACKING_URI", "") == ""
    run = default_stack.run_deployment("a")
    assert run.state.is_completed(), run.state.message
    logs = default_stack.logs_with(run.id, "stage evaluate: ")
    assert stage_outcomes(logs) == {"prepare": "ran", "train": "ran", "evaluate": "ran"}, logs
    assert not [line for line in default_stack.logs(run.id) if "mlflow" in line.lower()]
    with pytest.raises(LookupError):
        default_stack.artifact(run.id, "mlflow-tracking")  # flows/tracking.py's report
