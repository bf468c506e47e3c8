import os
import stat
from pathlib import Path

import pytest

from mltoy.io import atomic_path, atomic_write_bytes, atomic_write_text


class Boom(Exception):
    pass


def test_write_bytes_creates_parent_dirs_and_leaves_only_the_target(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert list(target.parent.iterdir()) == [target]


def test_write_text_is_utf8_with_newlines_kept_as_given(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "é\nb\n")
    assert target.read_bytes() == "é\nb\n".encode()


def test_write_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_failure_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(Boom), atomic_path(target) as temporary:
        temporary.write_text("half writ")
        raise Boom
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_failure_before_any_write_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(Boom), atomic_path(target):
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_temporary_is_a_sibling_so_the_rename_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent
        assert temporary != target
        temporary.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"


def test_a_given_mode_holds_before_the_first_byte_is_written(tmp_path: Path) -> None:
    """A secret's temporary file is never readable by others, even for a moment."""
    target = tmp_path / "credentials"
    previous = os.umask(0o022)
    try:
        with atomic_path(target, mode=0o600) as temporary:
            assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
            temporary.write_text("secret")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        os.umask(0o077)
        atomic_write_text(target, "public", mode=0o644)  # the mode wins over the umask
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_text() == "public"
