"""Atomic file writes, so that a stage that fails never leaves a half-written output."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` only if the block succeeds.

    The temporary file is a sibling of `path`, so the final rename stays on one file
    system and is atomic: readers see the old file or the new one, never a mix.
    `mode` (e.g. 0o600 for a secret): the temporary file exists with exactly that mode
    before anything is written to it, so its content is never readable by others, even
    for a moment; without it the writer creates the file (umask applies).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        if mode is not None:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                os.fchmod(descriptor, mode)  # exactly `mode`, whatever the umask
            finally:
                os.close(descriptor)
        yield temporary
        # On disk before the rename, so a crash cannot leave `path` naming an empty file.
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> None:
    with atomic_path(path, mode) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> None:
    """Write UTF-8 with the newlines as given, whatever the platform (same bytes everywhere)."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)
