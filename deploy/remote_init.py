"""Prepare the DVC remote and hand its settings to flow containers.

Runs once per `docker compose up` (service `remote-init`). With the store's root key it
creates the bucket (DVC never creates one) and a key limited to that bucket
(deploy/flow_identity.py); then it writes, into the `remote-settings` volume that flow
containers mount read-only at /run/mltoy:

- `dvc/config`: the remote `storage` (URL, endpoint), read through DVC_GLOBAL_CONFIG_DIR;
- `aws/config`, `aws/credentials` (S3) or `gcs/credentials.json` (GCS): what DVC, s3fs
  and gcsfs read by default. Only the bucket-scoped key is written, never the root key.

So credentials never travel in a deployment's job variables or a container's env.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from deploy.flow_identity import (
    FlowKey,
    IamProvisioner,
    MinioProvisioner,
    iam_client,
    minio_admin,
    read_key,
    wait_until_usable,
)
from mltoy.io import atomic_path, atomic_write_text

# Settings are readable by all; credentials by their owner only (the image's user, whom
# both remote-init and flow containers run as).
PUBLIC, SECRET = 0o644, 0o600


class RemoteSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    dvc_remote_url: str = Field(pattern=r"^(s3|gs)://[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9](/.*)?$")
    settings_dir: Path = Path("/run/mltoy")
    # S3-compatible stores (MinIO, ...): the root key creates the bucket and the flows'
    # bucket-scoped user through the store's admin API (`none`: the user gives that key).
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_root_user: SecretStr | None = None
    s3_root_password: SecretStr | None = None
    s3_admin_api: Literal["minio", "iam", "none"] = "minio"
    # Where that admin API answers, if not on S3_ENDPOINT_URL (e.g. a separate IAM port).
    s3_admin_endpoint_url: str | None = None
    flow_user: str = Field("mltoy-flows", pattern=r"^[A-Za-z0-9+=,.@_\-]{3,64}$")
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

    @property
    def admin_endpoint_url(self) -> str | None:
        """MinIO, Ceph RGW and moto serve their admin API on the S3 endpoint; AWS's IAM has
        its own global endpoint (botocore's default, None)."""
        if self.s3_admin_endpoint_url:
            return self.s3_admin_endpoint_url
        host = urlparse(self.s3_endpoint_url or "").hostname or ""
        return None if host.endswith("amazonaws.com") else self.s3_endpoint_url

    @model_validator(mode="after")
    def _credentials_for_scheme(self) -> RemoteSettings:
        if self.scheme == "s3" and not (self.s3_root_user and self.s3_root_password):
            raise ValueError("S3_ROOT_USER and S3_ROOT_PASSWORD are required for an s3:// remote")
        if self.scheme == "gs" and not self.gcs_credentials_file:
            raise ValueError("GCS_CREDENTIALS_FILE is required for a gs:// remote")
        if self.scheme == "s3":
            self._check_flow_key_settings()
        return self

    def _check_flow_key_settings(self) -> None:
        given = bool(_value(self.flow_access_key_id) or _value(self.flow_secret_access_key))
        if self.s3_admin_api != "none":
            if given:
                raise ValueError(
                    f"FLOW_ACCESS_KEY_ID/FLOW_SECRET_ACCESS_KEY are only used with "
                    f"S3_ADMIN_API=none (S3_ADMIN_API={self.s3_admin_api} creates the flows' key)"
                )
            return
        if not (_value(self.flow_access_key_id) and _value(self.flow_secret_access_key)):
            raise ValueError(
                "S3_ADMIN_API=none needs FLOW_ACCESS_KEY_ID and FLOW_SECRET_ACCESS_KEY: "
                "a key limited to the DVC bucket (flows never get the root key)"
            )
        if _value(self.flow_access_key_id) == _value(self.s3_root_user):
            raise ValueError("FLOW_ACCESS_KEY_ID is the root key: give a bucket-scoped key")

    def root_key(self) -> FlowKey:
        assert self.s3_root_user and self.s3_root_password  # guaranteed by the validator
        return FlowKey(
            self.s3_root_user.get_secret_value(), self.s3_root_password.get_secret_value()
        )


def _value(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret else ""


def s3_client(settings: RemoteSettings, key: FlowKey) -> Any:
    from botocore.session import get_session

    return get_session().create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )


def ensure_bucket(settings: RemoteSettings) -> bool:
    """Create the S3 bucket if missing; return whether it was created."""
    from botocore.exceptions import ClientError

    client = s3_client(settings, settings.root_key())
    try:
        client.head_bucket(Bucket=settings.bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=settings.bucket)
    return True


def flow_key(settings: RemoteSettings) -> FlowKey:
    """The bucket-scoped key for flows: made (or kept) with the root key, or the user's."""
    if settings.s3_admin_api == "none":
        assert settings.flow_access_key_id and settings.flow_secret_access_key
        return FlowKey(
            settings.flow_access_key_id.get_secret_value(),
            settings.flow_secret_access_key.get_secret_value(),
        )
    root = settings.root_key()
    current = read_key(settings.settings_dir / "aws/credentials")
    if current is not None and current.access_key_id == root.access_key_id:
        current = None  # written by an older version that handed flows the root key
    if settings.s3_admin_api == "iam":
        client = iam_client(settings.admin_endpoint_url, settings.s3_region, root)
        provisioner: IamProvisioner | MinioProvisioner = IamProvisioner(client)
    else:
        provisioner = MinioProvisioner(
            minio_admin(settings.admin_endpoint_url, settings.s3_region, root)
        )
    return provisioner.ensure(settings.flow_user, settings.bucket, current)


def write_settings(settings: RemoteSettings, key: FlowKey | None = None) -> list[Path]:
    """Write the files flow containers read (`key`: the flows' S3 key); return their paths."""
    root = settings.settings_dir
    dvc_remote = f"['remote \"storage\"']\n    url = {settings.dvc_remote_url}\n"
    written = []
    if settings.scheme == "s3":
        if settings.s3_endpoint_url:
            dvc_remote += f"    endpointurl = {settings.s3_endpoint_url}\n"
        assert key is not None, "an s3:// remote needs the flows' key"
        assert key.access_key_id != settings.root_key().access_key_id, "never the root key"
        aws_config = f"[default]\nregion = {settings.s3_region}\n"
        if settings.s3_endpoint_url:
            aws_config += f"endpoint_url = {settings.s3_endpoint_url}\n"
        atomic_write_text(root / "aws/config", aws_config, mode=PUBLIC)
        atomic_write_text(
            root / "aws/credentials",
            (
                f"[default]\naws_access_key_id = {key.access_key_id}\n"
                f"aws_secret_access_key = {key.secret_access_key}\n"
            ),
            mode=SECRET,
        )
        written += [root / "aws/config", root / "aws/credentials"]
    else:
        assert settings.gcs_credentials_file
        target = root / "gcs/credentials.json"
        with atomic_path(target, mode=SECRET) as temporary:
            shutil.copyfile(settings.gcs_credentials_file, temporary)
        dvc_remote += f"    credentialpath = {target}\n"
        written.append(target)
    atomic_write_text(root / "dvc/config", dvc_remote, mode=PUBLIC)
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
    key = None
    if settings.scheme == "s3":
        created = ensure_bucket(settings)
        print(f"remote-init: bucket {settings.bucket} {'created' if created else 'exists'}")
        key = flow_key(settings)
        wait_until_usable(s3_client(settings, key), settings.bucket)
        if settings.s3_admin_api == "none":
            print(f"remote-init: flows use FLOW_ACCESS_KEY_ID (it can list {settings.bucket})")
        else:
            print(f"remote-init: flows use user {settings.flow_user}, limited to {settings.bucket}")
    for path in write_settings(settings, key):
        print(f"remote-init: wrote {path}")
    print(f"remote-init: DVC remote 'storage' = {settings.dvc_remote_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
