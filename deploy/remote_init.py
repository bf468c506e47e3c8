"""Prepare the DVC remote and hand its settings to flow containers.

Runs once per `docker compose up` (service `remote-init`). It creates the bucket (DVC
never creates one) and writes, into the `remote-settings` volume that flow containers
mount read-only at /run/mltoy:

- `dvc/config`: the remote `storage` (URL, endpoint), read through DVC_GLOBAL_CONFIG_DIR;
- `aws/config`, `aws/credentials` (S3) or `gcs/credentials.json` (GCS): what DVC, s3fs
  and gcsfs read by default.

So credentials never travel in a deployment's job variables or a container's env.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RemoteSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    dvc_remote_url: str = Field(pattern=r"^(s3|gs)://[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9](/.*)?$")
    settings_dir: Path = Path("/run/mltoy")
    # S3-compatible stores (MinIO, ...): the admin key creates the bucket; flows get the
    # flow key (defaults to the admin key when none is given).
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_root_user: SecretStr | None = None
    s3_root_password: SecretStr | None = None
    flow_access_key_id: SecretStr | None = None
    flow_secret_access_key: SecretStr | None = None
    # GCS: a service-account key file mounted into this container.
    gcs_credentials_file: Path | None = None

    @property
    def scheme(self) -> Literal["s3", "gs"]:
        return "s3" if self.dvc_remote_url.startswith("s3://") else "gs"

    @property
    def bucket(self) -> str:
        return urlparse(self.dvc_remote_url).netloc

    @model_validator(mode="after")
    def _credentials_for_scheme(self) -> RemoteSettings:
        if self.scheme == "s3" and not (self.s3_root_user and self.s3_root_password):
            raise ValueError("S3_ROOT_USER and S3_ROOT_PASSWORD are required for an s3:// remote")
        if self.scheme == "gs" and not self.gcs_credentials_file:
            raise ValueError("GCS_CREDENTIALS_FILE is required for a gs:// remote")
        return self

    def flow_key(self) -> tuple[str, str]:
        user = self.flow_access_key_id or self.s3_root_user
        secret = self.flow_secret_access_key or self.s3_root_password
        assert user and secret  # guaranteed by the validator
        return user.get_secret_value(), secret.get_secret_value()


def ensure_bucket(settings: RemoteSettings) -> bool:
    """Create the S3 bucket if missing; return whether it was created."""
    from botocore.exceptions import ClientError
    from botocore.session import get_session

    assert settings.s3_root_user and settings.s3_root_password
    client = get_session().create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_root_user.get_secret_value(),
        aws_secret_access_key=settings.s3_root_password.get_secret_value(),
    )
    try:
        client.head_bucket(Bucket=settings.bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=settings.bucket)
    return True


def _write(path: Path, text: str, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600 if secret else 0o644)
    os.replace(tmp, path)


def write_settings(settings: RemoteSettings) -> list[Path]:
    """Write the files flow containers read; return their paths."""
    root = settings.settings_dir
    dvc_remote = f"['remote \"storage\"']\n    url = {settings.dvc_remote_url}\n"
    written = []
    if settings.scheme == "s3":
        if settings.s3_endpoint_url:
            dvc_remote += f"    endpointurl = {settings.s3_endpoint_url}\n"
        user, secret = settings.flow_key()
        aws_config = f"[default]\nregion = {settings.s3_region}\n"
        if settings.s3_endpoint_url:
            aws_config += f"endpoint_url = {settings.s3_endpoint_url}\n"
        _write(root / "aws/config", aws_config)
        _write(
            root / "aws/credentials",
            f"[default]\naws_access_key_id = {user}\naws_secret_access_key = {secret}\n",
            secret=True,
        )
        written += [root / "aws/config", root / "aws/credentials"]
    else:
        assert settings.gcs_credentials_file
        target = root / "gcs/credentials.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.gcs_credentials_file, target)
        target.chmod(0o600)
        dvc_remote += f"    credentialpath = {target}\n"
        written.append(target)
    _write(root / "dvc/config", dvc_remote)
    written.append(root / "dvc/config")
    return written


def main() -> int:
    try:
        settings = RemoteSettings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            print(f"remote-init: error: {where}: {error['msg']}", file=sys.stderr)
        return 2
    if settings.scheme == "s3":
        created = ensure_bucket(settings)
        print(f"remote-init: bucket {settings.bucket} {'created' if created else 'exists'}")
    for path in write_settings(settings):
        print(f"remote-init: wrote {path}")
    print(f"remote-init: DVC remote 'storage' = {settings.dvc_remote_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
