"""Stage outputs stored by content in DVC's own cache and remote.

Option B skips a stage when its cache key hits, so the stage's outputs must come from
somewhere: they are kept under their MD5 in the DVC cache (`.dvc/cache/files/md5/..`)
and, when asked, in the DVC remote, the same objects and layout `dvc push` uses.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from flows.dvc_remote import (
    describe_remote,
    is_unreachable,
    missing_bucket,
    missing_bucket_message,
)
from flows.fingerprint import hash_paths, md5_file
from mltoy.io import atomic_path


class MissingObjectError(RuntimeError):
    """A file's object is in neither the cache nor the remote (or only a corrupt copy).

    For a stage's output (a cached result after `dvc gc`), option B runs the stage
    again; for tracked data nobody produces (raw data), it is the run's failure.
    """

    bad_input = True  # another attempt would find it missing again (see flows.retry)

    def __init__(self, message: str, relpath: str, oid: str) -> None:
        super().__init__(message)
        self.relpath = relpath
        self.oid = oid

    def __reduce__(self) -> tuple:  # a task's exception crosses a pickle
        return type(self), (str(self), self.relpath, self.oid)


class RemoteUnavailableError(RuntimeError):
    """The DVC remote did not answer (or refused): a transient fault, worth a retry.

    Told apart from a missing object on purpose: "not there" and "could not look" call
    for different fixes.
    """


class MissingBucketError(RuntimeError):
    """The remote's bucket does not exist: a setting to fix, so never retried."""

    bad_input = True  # see flows.retry


class ContentStore:
    def __init__(self, project_dir: Path, use_remote: bool) -> None:
        from dvc.repo import Repo
        from dvc_objects.fs.local import LocalFileSystem

        self.project_dir = project_dir
        self._repo = Repo(str(project_dir))
        self._local = self._repo.cache.local
        self._remote = self._repo.cloud.get_remote_odb(command="option-b") if use_remote else None
        self._localfs = LocalFileSystem()
        self._lock = threading.Lock()  # DVC's objects are not thread-safe
        self._corrupt: set[str] = set()  # remote objects whose bytes do not match their md5

    @contextmanager
    def _remote_errors(self) -> Iterator[None]:
        """Any failure but "no such object" becomes a RemoteUnavailableError naming it."""
        try:
            yield
        except FileNotFoundError as exc:
            bucket = missing_bucket(f"{type(exc).__name__}: {exc}", self._repo.config)
            if bucket:
                message = missing_bucket_message(bucket, self._repo.config)
                raise MissingBucketError(f"{message}: {exc}") from exc
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            bucket = missing_bucket(error, self._repo.config)
            if bucket:
                message = missing_bucket_message(bucket, self._repo.config)
                raise MissingBucketError(f"{message}: {error}") from exc
            what = "is unreachable" if is_unreachable(error) else "failed"
            remote = describe_remote(self._repo.config)
            raise RemoteUnavailableError(f"remote {remote} {what}: {error}") from exc

    def _remote_has(self, oid: str) -> bool:
        # Not odb.exists(): fsspec's exists() answers False when it cannot even ask.
        assert self._remote is not None
        with self._remote_errors():
            try:
                self._remote.fs.info(self._remote.oid_to_path(oid))
            except FileNotFoundError:
                return False
        return True

    @property
    def identity(self) -> str:
        """Where objects live: cached results are only valid where their objects are."""
        odb = self._remote if self._remote is not None else self._local
        return f"{type(odb.fs).__name__}:{odb.path}"

    def save(self, relpaths: Iterable[str]) -> dict[str, str]:
        """Store the files at `relpaths` (files or directories); return {file: md5}."""
        hashes = hash_paths(self.project_dir, relpaths)
        with self._lock:
            for relpath, oid in hashes.items():
                self._local.add(str(self.project_dir / relpath), self._localfs, oid)
                if self._remote is not None:
                    with self._remote_errors():
                        # A corrupt copy found there is overwritten, not kept as "exists".
                        self._remote.add(
                            self._local.oid_to_path(oid),
                            self._local.fs,
                            oid,
                            check_exists=oid not in self._corrupt,
                        )
                    self._corrupt.discard(oid)
        return hashes

    def restore(self, files: Mapping[str, str], missing_only: bool = False) -> list[str]:
        """Make the workspace hold these file contents; return what was written.

        `missing_only`: leave existing files alone even if they differ (a user's edit of
        tracked data is theirs to keep, as `dvc repro` would).
        """
        written = []
        for relpath, oid in sorted(files.items()):
            target = self.project_dir / relpath
            if target.is_file() and (missing_only or md5_file(target) == oid):
                continue
            source = self._fetch(relpath, oid)
            # Not the cache's mode: DVC's objects are read-only, a workspace file is not.
            with atomic_path(target, mode=0o644) as temporary:
                shutil.copyfile(source, temporary)
            written.append(relpath)
        return written

    def _fetch(self, relpath: str, oid: str) -> str:
        with self._lock:
            if not self._local.exists(oid) and self._remote is not None and self._remote_has(oid):
                with self._remote_errors():
                    self._local.add(self._remote.oid_to_path(oid), self._remote.fs, oid)
                local = Path(self._local.oid_to_path(oid))
                if md5_file(local) != oid:  # a partial or altered object in the remote
                    local.unlink()
                    self._corrupt.add(oid)
                    raise MissingObjectError(
                        f"{relpath}: the remote's object {oid} does not match its md5 "
                        "(corrupt): not used",
                        relpath,
                        oid,
                    )
            if not self._local.exists(oid):
                where = "the DVC cache" + (" or remote" if self._remote is not None else "")
                raise MissingObjectError(
                    f"{relpath}: object {oid} is in neither {where}", relpath, oid
                )
            return self._local.oid_to_path(oid)

    def close(self) -> None:
        self._repo.close()
