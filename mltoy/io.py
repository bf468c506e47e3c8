"""Atomic file writes, so that a stage that fails never leaves a half-written output."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` only if the block succeeds.

    The temporary file is a sibling of `path`, so the final rename stays on one file
    system and is atomic: readers see the old file or the new one, never a mix.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        # On disk before the rename, so a crash cannot leave `path` naming an empty file.
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 with the newlines as given, whatever the platform (same bytes everywhere)."""
    atomic_write_bytes(path, text.encode("utf-8"))
