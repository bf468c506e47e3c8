import pytest

from flows.stage_exec import outputs_set_aside


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
