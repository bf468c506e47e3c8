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

# How DVC, botocore, s3fs, gcsfs and aiohttp say a remote could not be reached, in an
# error line of DVC's output or in an exception's type and message.
_UNREACHABLE = re.compile(
    r"Could not connect to the endpoint URL|failed to connect to|Connection refused"
    r"|Name or service not known|Temporary failure in name resolution|Connect timeout"
    r"|Read timeout on endpoint URL|Cannot connect to host"
    r"|EndpointConnectionError|ConnectTimeoutError|ClientConnectorError|ConnectionError",
    re.IGNORECASE,
)


def is_unreachable(text: str) -> bool:
    """True when `text` (an error line, or "ExceptionType: message") says the remote
    could not be reached: worth a retry, and not the data's or the stage's fault."""
    return bool(_UNREACHABLE.search(text))


def describe_remote(config: Mapping[str, Any]) -> str:
    """'storage' (s3://mltoy/dvc at http://s3:9000): the default remote of a DVC config."""
    name = config.get("core", {}).get("remote")
    if not name:
        return "the DVC remote"
    remote = config.get("remote", {}).get(name, {})
    where = " at ".join(
        str(part) for part in (remote.get("url"), remote.get("endpointurl")) if part
    )
    return f"'{name}' ({where})" if where else f"'{name}'"


def project_remote(project: Path) -> str:
    """The project's default remote, described from DVC's config files (no `dvc` process)."""
    from dvc.config import Config

    try:
        return describe_remote(Config(dvc_dir=project / ".dvc"))
    except Exception:  # naming the remote must not hide the failure being reported
        return "the DVC remote"
