"""Where a flow run's persisted task results go, so that runs in containers that share
no disk share their caches (option B's stages, the confusion-matrix picture)."""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

from prefect.filesystems import LocalFileSystem, RemoteFileSystem, WritableFileSystem


def result_storage(url: str) -> WritableFileSystem:
    """A saved storage block for `url` (tasks only accept saved ones); no secret in it.

    Remote URLs (s3://, gs://) read their credentials the default way (AWS/GCS config
    files, env); a plain path or file:// URL is a local directory.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        block: WritableFileSystem = LocalFileSystem(basepath=parsed.path or url)
    else:
        block = RemoteFileSystem(basepath=url)
    name = f"mltoy-results-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    block.save(name, overwrite=True)
    return block
