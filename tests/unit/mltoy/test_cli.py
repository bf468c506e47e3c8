import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import mltoy
from mltoy.cli import main, run
from mltoy.errors import DataError, MltoyInputError, ParamsError

from .helpers import MISSING, STAGES, edited, replace_line, snapshot, write_params

REPO = Path(mltoy.__file__).resolve().parents[1]
OUTPUTS = (
    "data/prepared/train.csv",
    "data/prepared/test.csv",
    "models/model.joblib",
    "reports/metrics.json",
    "reports/plots/confusion.csv",
)


def fail_in(
    workspace: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """Run `main` in `workspace`; check exit 2, one stderr line, nothing touched."""
    monkeypatch.chdir(workspace)
    before = snapshot(workspace)
    assert main(argv) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith("mltoy: error: ")
    assert snapshot(workspace) == before
    return stderr.removeprefix("mltoy: error: ").rstrip("\n")


def test_chain_writes_every_output_at_the_default_paths(built_workspace: Path) -> None:
    for relpath in OUTPUTS:
        assert (built_workspace / relpath).is_file(), relpath
    metrics = json.loads((built_workspace / "reports/metrics.json").read_text())
    assert metrics["accuracy"] > 0.85
    assert metrics["n_test"] == 45


def test_chain_is_reproducible_and_never_changes_the_process_cwd(
    built_workspace: Path, tmp_path: Path
) -> None:
    cwd = os.getcwd()
    again = tmp_path / "again"
    again.mkdir()
    write_params(again / "params.yaml")
    summaries = [run([command], cwd=again) for command in ("raw-data", *STAGES)]
    assert os.getcwd() == cwd
    assert summaries[0] == {"out": str(again / "data/raw/iris.csv"), "written": True}
    assert summaries[1] == {"train_rows": 105, "test_rows": 45}
    assert snapshot(again) == snapshot(built_workspace)


def test_stages_run_side_by_side_in_threads(built_workspace: Path, tmp_path: Path) -> None:
    def chain(name: str) -> dict[str, Any]:
        root = tmp_path / name
        root.mkdir()
        write_params(root / "params.yaml")
        for command in ("raw-data", "prepare", "train"):
            run([command], cwd=root)
        return run(["evaluate"], cwd=root)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(chain, ["one", "two"]))
    expected = json.loads((built_workspace / "reports/metrics.json").read_text())
    assert results == [expected, expected]


def test_raw_data_keeps_an_existing_file_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "raw.csv"
    out.write_text("mine\n")
    assert run(["raw-data", "--out", str(out)]) == {"out": str(out), "written": False}
    assert out.read_text() == "mine\n"
    assert run(["raw-data", "--out", str(out), "--force"])["written"] is True
    assert out.read_text().startswith("sepal_length,")


def test_main_logs_one_summary_line_per_stage(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(workspace)
    with caplog.at_level("INFO", logger="mltoy"):
        assert main(["prepare"]) == 0
    assert caplog.messages == ["prepare: train_rows=105, test_rows=45"]


# Each breaks a different section, so that every stage is shown to check the whole file.
BAD_PARAMS = {
    "test_size 1.5": (("split", "test_size"), 1.5, "split.test_size = 1.5: must be"),
    "test_size string": (("split", "test_size"), "0.3", "split.test_size = '0.3': must be"),
    "C missing": (("train", "C"), MISSING, "train.C is missing"),
    "unknown key": (("train", "foo"), 3, "train.foo = 3: unknown key"),
    "max_iter wrong type": (("train", "max_iter"), "many", "train.max_iter = 'many': must be"),
    "bad average": (("evaluate", "average"), "mean", "evaluate.average = 'mean': must be"),
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(("keys", "value", "expected"), BAD_PARAMS.values(), ids=BAD_PARAMS.keys())
def test_bad_params_fail_every_stage_before_any_file_is_touched(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    keys: tuple[str, ...],
    value: Any,
    expected: str,
) -> None:
    write_params(workspace / "params.yaml", edited(keys, value))
    message = fail_in(workspace, [stage], monkeypatch, capsys)
    assert message.startswith(f"params.yaml: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("split: [1\n", "params.yaml: invalid YAML at line 2"),
        ("", "params.yaml: no params"),
    ],
)
def test_malformed_params_file(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    expected: str,
) -> None:
    (workspace / "params.yaml").write_text(text)
    assert fail_in(workspace, ["train"], monkeypatch, capsys).startswith(expected)


def test_missing_params_file(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = fail_in(workspace, ["evaluate", "--params", "nope.yaml"], monkeypatch, capsys)
    assert message == "nope.yaml: cannot read: No such file or directory"


def keep_lines(*numbers: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[n - 1] for n in numbers))

    return edit


def set_line(line: int, text: str) -> Callable[[Path], None]:
    return lambda path: replace_line(path, line, text)


RAW = "data/raw/iris.csv"
TRAIN = "data/prepared/train.csv"
BAD_DATA = {
    "missing column": (
        "prepare",
        RAW,
        lambda p: p.write_text(p.read_text().replace(",species", ",kind")),
        f"{RAW}: missing required column(s) species",
    ),
    "non-numeric": (
        "prepare",
        RAW,
        set_line(3, "4.9,abc,1.4,0.2,setosa"),
        f"{RAW}: line 3: column 'sepal_width' has value 'abc'",
    ),
    "NaN": ("prepare", RAW, set_line(4, "4.9,3,NaN,0.2,setosa"), f"{RAW}: line 4:"),
    "empty file": ("prepare", RAW, lambda p: p.write_text(""), f"{RAW}: has no rows"),
    "header only": ("prepare", RAW, keep_lines(1), f"{RAW}: has no rows"),
    "class with one row": (
        "prepare",
        RAW,
        keep_lines(*range(1, 102), 151),
        f"{RAW}: class 'virginica' has only 1 row",
    ),
    "bad train data": ("train", TRAIN, set_line(2, "1,2,3,,x"), f"{TRAIN}: line 2:"),
    "damaged model": (
        "evaluate",
        "models/model.joblib",
        lambda p: p.write_bytes(b"junk"),
        "models/model.joblib: cannot load the model",
    ),
    "missing model": (
        "evaluate",
        "models/model.joblib",
        Path.unlink,
        "models/model.joblib: cannot load the model: No such file or directory",
    ),
}


@pytest.mark.parametrize(
    ("stage", "relpath", "edit", "expected"), BAD_DATA.values(), ids=BAD_DATA.keys()
)
def test_bad_data_fails_the_stage_and_keeps_the_outputs(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    relpath: str,
    edit: Callable[[Path], None],
    expected: str,
) -> None:
    edit(workspace / relpath)
    assert fail_in(workspace, [stage], monkeypatch, capsys).startswith(expected)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "the following arguments are required: STAGE"),
        (["fit"], "argument STAGE: invalid choice: 'fit'"),
        (["prepare", "--seed", "1"], "unrecognized arguments: --seed 1"),
        (["train", "--params"], "argument --params: expected one argument"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    assert fail_in(workspace, argv, monkeypatch, capsys).startswith(expected)


def test_run_raises_instead_of_exiting(tmp_path: Path) -> None:
    with pytest.raises(ParamsError):
        run(["prepare"], cwd=tmp_path)
    write_params(tmp_path / "params.yaml")
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / RAW))}: cannot read"):
        run(["prepare"], cwd=tmp_path)
    with pytest.raises(MltoyInputError):
        run(["nonsense"], cwd=tmp_path)


@pytest.mark.slow  # four interpreters, each importing scikit-learn
def test_python_dash_m_runs_the_chain_and_reports_a_failure_in_one_line(
    tmp_path: Path, raw_csv: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mltoy.cli", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    write_params(tmp_path / "params.yaml")
    for stage in STAGES:
        done = cli(stage, "--raw", str(raw_csv)) if stage == "prepare" else cli(stage)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(f"mltoy: {stage}: ")
    for relpath in OUTPUTS:
        assert (tmp_path / relpath).is_file(), relpath

    write_params(tmp_path / "params.yaml", edited(("train", "C"), -1.0))
    failed = cli("evaluate")
    assert failed.returncode == 2
    assert failed.stderr.splitlines() == [
        "mltoy: error: params.yaml: train.C = -1.0: must be a finite number > 0"
    ]
