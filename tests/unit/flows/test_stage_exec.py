import pytest
from prefect.logging import disable_run_logger

from flows.dvc_pipeline import Stage
from flows.retry import is_bad_input
from flows.stage_exec import StageCommandError, mltoy_arguments, outputs_set_aside, run_command
from mltoy.errors import EXIT_BAD_INPUT, ParamsError

IN_PROCESS = [
    ("python -m mltoy.cli train --params params.yaml", ["train", "--params", "params.yaml"]),
    ("python3 -m mltoy.cli evaluate", ["evaluate"]),
    (
        "  python3.11   -m mltoy.cli prepare --raw data/raw/iris.csv ",
        ["prepare", "--raw", "data/raw/iris.csv"],
    ),
]
IN_A_SHELL = [
    "/usr/bin/python3 -m mltoy.cli train",  # another interpreter, maybe
    "python -m mltoy.cli train && python -m mltoy.cli evaluate",  # a command list
    "python -m mltoy.cli train > train.log",
    "python -m mltoy.cli train --params $PARAMS",
    "python -m mltoy.cli train --params 'my params.yaml'",
    "python -m mltoy.cli train --out models/*.joblib",
    "PYTHONHASHSEED=0 python -m mltoy.cli train",
    "python -m mltoy.cli",
    "python -m mltoy.other train",
    "python train.py",
]


@pytest.mark.parametrize(("cmd", "arguments"), IN_PROCESS)
def test_a_plain_mltoy_command_runs_in_process(cmd, arguments):
    assert mltoy_arguments(cmd) == arguments


@pytest.mark.parametrize("cmd", IN_A_SHELL)
def test_anything_a_shell_could_read_otherwise_runs_in_a_shell(cmd):
    assert mltoy_arguments(cmd) is None


def stage(cmd: str) -> Stage:
    return Stage("s", cmd, ".", (), (), (), ())


def test_both_ways_of_running_a_stage_report_bad_input_alike(tmp_path):
    """In-process mltoy raises MltoyInputError; a shell command exiting EXIT_BAD_INPUT
    is bad input too: neither is retried, as in option A."""
    with disable_run_logger():
        with pytest.raises(ParamsError) as in_process:
            run_command(stage("python -m mltoy.cli train --params nowhere.yaml"), tmp_path)
        with pytest.raises(StageCommandError) as in_shell:
            run_command(stage(f"exit {EXIT_BAD_INPUT}"), tmp_path)
        with pytest.raises(StageCommandError) as other:
            run_command(stage("exit 1"), tmp_path)
    assert is_bad_input(in_process.value) and is_bad_input(in_shell.value)
    assert not is_bad_input(other.value)


def test_old_outputs_come_back_when_the_stage_fails(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out/model.bin").write_bytes(b"last good")
    with pytest.raises(RuntimeError), outputs_set_aside(tmp_path, ("out/model.bin",)):
        assert not (tmp_path / "out/model.bin").exists()  # the stage writes afresh
        (tmp_path / "out/model.bin").write_bytes(b"half")
        raise RuntimeError("stage failed")
    assert (tmp_path / "out/model.bin").read_bytes() == b"last good"


def test_old_outputs_are_dropped_when_the_stage_succeeds(tmp_path):
    (tmp_path / "report.md").write_text("old")
    with outputs_set_aside(tmp_path, ("report.md", "never-written.csv")):
        (tmp_path / "report.md").write_text("new")
    assert (tmp_path / "report.md").read_text() == "new"
    assert not any((tmp_path / ".dvc/tmp/option-b-aside").rglob("*.md"))
