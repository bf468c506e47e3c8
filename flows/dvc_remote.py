"""The DVC remote as failures name it, and how to tell it could not be reached.

Both options report a remote that does not answer the same way: which remote (from
DVC's own config, all levels merged, as `dvc push` reads it) and that it is
unreachable, as opposed to a missing object or a failed stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# How DVC, botocore, s3fs, gcsfs and aiohttp say a remote could not be reached, in an
# error line of DVC's output or in an exception's type and message.
_UNREACHABLE = re.compile(
    r"Could not connect to the endpoint URL|failed to connect to|Connection refused"
    r"|Name or service not known|Temporary failure in name resolution|Connect timeout"
    r"|Read timeout on endpoint URL|Cannot connect to host"
    r"|EndpointConnectionError|ConnectTimeoutError|ClientConnectorError|ConnectionError",
    re.IGNORECASE,
)


# How a missing bucket shows: GCS answers 404 on a bucket's object collection (gcsfs then
# raises FileNotFoundError naming that URL, `.../b/BUCKET/o`, or its path `b/BUCKET/o`; a
# missing object is
# `.../b/BUCKET/o/NAME`), S3 says NoSuchBucket.
_MISSING_GCS_BUCKET = re.compile(
    r"(?:^|[\s/'\"])b/(?P<bucket>[a-z0-9][a-z0-9._\-]*[a-z0-9])/o(?![/\w])"
)
_MISSING_S3_BUCKET = re.compile(r"NoSuchBucket|The specified bucket does not exist")


def missing_bucket(text: str, config: Mapping[str, Any]) -> str | None:
    """The bucket `text` (an error line, or "ExceptionType: message") says does not exist,
    or None. A missing bucket is a setting to fix, not a fault to retry."""
    gcs = _MISSING_GCS_BUCKET.search(text)
    if gcs and ("FileNotFoundError" in text or "404" in text or text.startswith("ERROR")):
        return gcs.group("bucket")
    if _MISSING_S3_BUCKET.search(text):
        url = _default_remote(config).get("url", "")
        return urlparse(str(url)).netloc or "the remote's bucket"
    return None


def missing_bucket_message(bucket: str, config: Mapping[str, Any]) -> str:
    return (
        f"remote {describe_remote(config)}: bucket '{bucket}' does not exist "
        "(create it, or fix the remote's URL; DVC never creates buckets)"
    )


def probe_missing_bucket(project: Path) -> str | None:
    """The default remote's bucket if it is a gs:// one that does not exist, else None.
    DVC reports a pull from a missing GCS bucket as missing data (gcsfs finds no objects
    there), so a failed pull lists the remote once to tell. S3 needs no probe: DVC's own
    error line says NoSuchBucket."""
    config = project_config(project)
    if not str(_default_remote(config).get("url", "")).startswith("gs://"):
        return None
    from dvc.repo import Repo

    try:
        with Repo(str(project)) as repo:
            remote = repo.cloud.get_remote()
            remote.fs.ls(remote.path)
    except Exception as exc:
        return missing_bucket(f"{type(exc).__name__}: {exc}", config)
    return None


def is_unreachable(text: str) -> bool:
    """True when `text` (an error line, or "ExceptionType: message") says the remote
    could not be reached: worth a retry, and not the data's or the stage's fault."""
    return bool(_UNREACHABLE.search(text))


def _default_remote(config: Mapping[str, Any]) -> Mapping[str, Any]:
    name = config.get("core", {}).get("remote")
    return config.get("remote", {}).get(name, {}) if name else {}


def describe_remote(config: Mapping[str, Any]) -> str:
    """'storage' (s3://mltoy/dvc at http://s3:9000): the default remote of a DVC config."""
    name = config.get("core", {}).get("remote")
    if not name:
        return "the DVC remote"
    remote = _default_remote(config)
    where = " at ".join(
        str(part) for part in (remote.get("url"), remote.get("endpointurl")) if part
    )
    return f"'{name}' ({where})" if where else f"'{name}'"


def project_config(project: Path) -> Mapping[str, Any]:
    """The project's DVC config, all levels merged (empty if unreadable: naming the remote
    must not hide the failure being reported)."""
    from dvc.config import Config

    try:
        return Config(dvc_dir=project / ".dvc")
    except Exception:
        return {}


def project_remote(project: Path) -> str:
    """The project's default remote, described from DVC's config files (no `dvc` process)."""
    return describe_remote(project_config(project))
