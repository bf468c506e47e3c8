from __future__ import annotations

import hashlib

import pytest

from flows.dvc_pipeline import ParamRef, Stage
from flows.fingerprint import MissingInputError, hash_path, md5_file, param_values, stage_key

STAGE = Stage("train", "python -m mltoy.cli train", ".", ("a.csv",), (), ("m.bin",), ())


def test_file_and_directory_hashes_are_md5_of_bytes(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x").write_bytes(b"x")
    (tmp_path / "f").write_bytes(b"hello")
    assert hash_path(tmp_path, "f") == {"f": hashlib.md5(b"hello").hexdigest()}
    assert hash_path(tmp_path, "d") == {"d/sub/x": hashlib.md5(b"x").hexdigest()}
    with pytest.raises(MissingInputError, match="nope"):
        hash_path(tmp_path, "nope")


def test_param_values_by_section_key_and_whole_file(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  C: 1.0\n  seed: 3\nsplit: {seed: 1}\n")
    refs = [ParamRef("params.yaml", ("train", "split.seed"))]
    assert param_values(tmp_path, refs) == {
        "params.yaml:train": {"C": 1.0, "seed": 3},
        "params.yaml:split.seed": 1,
    }
    assert param_values(tmp_path, [ParamRef("params.yaml")])["params.yaml:split"] == {"seed": 1}
    with pytest.raises(KeyError, match="train.gamma"):
        param_values(tmp_path, [ParamRef("params.yaml", ("train.gamma",))])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("params.json", '{"train": {"C": 0.5}}'),
        ("params.toml", "[train]\nC = 0.5\n"),
        ("params.py", "class train:\n    C = 0.5\n"),
    ],
)
def test_params_files_of_every_format_dvc_reads(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    assert param_values(tmp_path, [ParamRef(name, ("train.C",))]) == {f"{name}:train.C": 0.5}


def test_a_file_hashes_to_its_dvc_object_name(tmp_path):
    """DVC 3 names objects by the MD5 of the bytes (no newline conversion)."""
    (tmp_path / "f.csv").write_bytes(b"a,b\r\n1,2\r\n")
    assert md5_file(tmp_path / "f.csv") == hashlib.md5(b"a,b\r\n1,2\r\n").hexdigest()


def test_key_changes_with_each_input_and_only_then():
    base = dict(external_deps={"a": "1"}, upstream_outs={"u": "2"}, params={"p": 1}, store="s")
    key = stage_key(STAGE, **base)
    assert key == stage_key(STAGE, **base)
    assert key.startswith("train-")
    for field, value in [
        ("external_deps", {"a": "9"}),
        ("upstream_outs", {"u": "9"}),
        ("params", {"p": 2}),
        ("store", "elsewhere"),
    ]:
        assert stage_key(STAGE, **{**base, field: value}) != key
    changed_cmd = Stage(**{**STAGE.__dict__, "cmd": "python -m mltoy.cli train --x"})
    assert stage_key(changed_cmd, **base) != key
