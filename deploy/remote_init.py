"""Prepare the DVC remote and hand its settings to flow containers.

Runs once per `docker compose up` (service `remote-init`). With the store's root key it
creates the bucket (DVC never creates one) and a key limited to that bucket
(deploy/flow_identity.py); then it writes, into the `remote-settings` volume that flow
containers mount read-only at /run/mltoy:

- `dvc/config`: the remote `storage` (URL, endpoint), read through DVC_GLOBAL_CONFIG_DIR;
- `aws/config`, `aws/credentials` (S3) or `gcs/credentials.json` (GCS): what DVC, s3fs
  and gcsfs read by default. Only the bucket-scoped key is written, never the root key;
- `git/config`, `git/credentials`: the flows' Git identity on the stack's Git server
  (read; push refs/heads/runs/* only), read through GIT_CONFIG_GLOBAL's credential helper.

So credentials never travel in a deployment's job variables, a clone URL or a container's
env. A second bucket-scoped key, the developer's, goes to the `developer-settings`
volume, which no flow mounts: `make remote-config` copies it into the host checkout's
`.dvc/config.local` (deploy/host_remote.py).

With the MLflow tracking server (compose.mlflow.yaml, MLFLOW_ARTIFACTS_URL set) it does the
same for the server's artifact proxy: the artifact bucket, a key limited to it (user
`mltoy-mlflow`), written as `aws/config` and `aws/credentials` into the server's own
settings volume (/run/mlflow-server), which flow containers never mount.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
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
from deploy.settings import load_settings
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
    # The developer's key (host-side `dvc pull`/`push`): another user with the same policy.
    dev_user: str = Field("mltoy-developer", pattern=r"^[A-Za-z0-9+=,.@_\-]{3,64}$")
    dev_access_key_id: SecretStr | None = None
    dev_secret_access_key: SecretStr | None = None
    developer_dir: Path = Path("/run/mltoy-developer")
    # The stack's Git server and the flows' identity on it (read; push runs/* only).
    mltoy_git_url: str | None = None
    git_flow_user: str | None = None
    git_flow_password: SecretStr | None = None
    # GCS: a service-account key file mounted into this container.
    gcs_credentials_file: Path | None = None
    # The MLflow server's artifact store (compose.mlflow.yaml): its own bucket in the S3 store.
    mlflow_artifacts_url: str | None = Field(
        None, pattern=r"^s3://[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9](/.*)?$"
    )
    mlflow_s3_user: str = Field("mltoy-mlflow", pattern=r"^[A-Za-z0-9+=,.@_\-]{3,64}$")
    mlflow_settings_dir: Path = Path("/run/mlflow-server")
    mlflow_s3_access_key_id: SecretStr | None = None
    mlflow_s3_secret_access_key: SecretStr | None = None

    @property
    def scheme(self) -> Literal["s3", "gs"]:
        return "s3" if self.dvc_remote_url.startswith("s3://") else "gs"

    @property
    def bucket(self) -> str:
        return urlparse(self.dvc_remote_url).netloc

    @property
    def mlflow_bucket(self) -> str | None:
        return urlparse(self.mlflow_artifacts_url).netloc if self.mlflow_artifacts_url else None

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

    @model_validator(mode="after")
    def _identities(self) -> RemoteSettings:
        if self.mltoy_git_url and not (self.git_flow_user and _value(self.git_flow_password)):
            raise ValueError("MLTOY_GIT_URL needs GIT_FLOW_USER and GIT_FLOW_PASSWORD")
        if self.mltoy_git_url and urlparse(self.mltoy_git_url).password:
            raise ValueError("MLTOY_GIT_URL must not hold credentials")
        if self.flow_user == self.dev_user:
            raise ValueError("FLOW_USER and DEV_USER must differ: flows never get that key")
        return self

    @model_validator(mode="after")
    def _mlflow_artifacts(self) -> RemoteSettings:
        if not self.mlflow_artifacts_url:
            return self
        if not (self.s3_root_user and self.s3_root_password):
            raise ValueError("S3_ROOT_USER and S3_ROOT_PASSWORD are required for MLflow's bucket")
        key_id = _value(self.mlflow_s3_access_key_id)
        secret = _value(self.mlflow_s3_secret_access_key)
        if self.s3_admin_api != "none":
            if key_id or secret:
                raise ValueError(
                    "MLFLOW_S3_ACCESS_KEY_ID/MLFLOW_S3_SECRET_ACCESS_KEY are only used with "
                    f"S3_ADMIN_API=none (S3_ADMIN_API={self.s3_admin_api} creates that key)"
                )
        elif not (key_id and secret):
            raise ValueError(
                "S3_ADMIN_API=none needs MLFLOW_S3_ACCESS_KEY_ID and MLFLOW_S3_SECRET_ACCESS_KEY: "
                "a key limited to MLflow's bucket (never the root key)"
            )
        elif key_id == _value(self.s3_root_user):
            raise ValueError("MLFLOW_S3_ACCESS_KEY_ID is the root key: give a bucket-scoped key")
        if self.mlflow_s3_user in (self.flow_user, self.dev_user):
            raise ValueError("MLFLOW_S3_USER must differ from FLOW_USER and DEV_USER")
        return self

    def root_key(self) -> FlowKey:
        if not (self.s3_root_user and self.s3_root_password):
            raise ValueError("S3_ROOT_USER and S3_ROOT_PASSWORD are required for an s3:// remote")
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


def ensure_bucket(settings: RemoteSettings, bucket: str | None = None) -> bool:
    """Create the S3 bucket (default: the DVC remote's) if missing; return whether it was."""
    from botocore.exceptions import ClientError

    bucket = bucket or settings.bucket
    client = s3_client(settings, settings.root_key())
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=bucket)
    return True


def flow_key(settings: RemoteSettings) -> FlowKey:
    """The bucket-scoped key for flows: made (or kept) with the root key, or the user's."""
    if settings.s3_admin_api == "none":
        if not (settings.flow_access_key_id and settings.flow_secret_access_key):
            raise ValueError(
                "S3_ADMIN_API=none needs FLOW_ACCESS_KEY_ID and FLOW_SECRET_ACCESS_KEY"
            )
        return FlowKey(
            settings.flow_access_key_id.get_secret_value(),
            settings.flow_secret_access_key.get_secret_value(),
        )
    return _bucket_key(settings, settings.flow_user, settings.settings_dir / "aws/credentials")


def developer_key(settings: RemoteSettings) -> FlowKey | None:
    """The developer's bucket-scoped key (host-side DVC); None when it cannot be made
    (S3_ADMIN_API=none and no DEV_ACCESS_KEY_ID/DEV_SECRET_ACCESS_KEY given)."""
    if settings.s3_admin_api == "none":
        key_id, secret = _value(settings.dev_access_key_id), _value(settings.dev_secret_access_key)
        return FlowKey(key_id, secret) if key_id and secret else None
    return _bucket_key(settings, settings.dev_user, settings.developer_dir / "aws/credentials")


def mlflow_server_key(settings: RemoteSettings) -> FlowKey:
    """The key of MLflow's artifact proxy, limited to MLflow's bucket: the user's
    (S3_ADMIN_API=none), else made (or kept) for MLFLOW_S3_USER."""
    assert settings.mlflow_bucket
    if settings.s3_admin_api == "none":
        assert settings.mlflow_s3_access_key_id and settings.mlflow_s3_secret_access_key
        return FlowKey(
            settings.mlflow_s3_access_key_id.get_secret_value(),
            settings.mlflow_s3_secret_access_key.get_secret_value(),
        )
    credentials = settings.mlflow_settings_dir / "aws/credentials"
    return _bucket_key(settings, settings.mlflow_s3_user, credentials, settings.mlflow_bucket)


def _bucket_key(
    settings: RemoteSettings, user: str, credentials_file: Path, bucket: str | None = None
) -> FlowKey:
    """Make (or keep, when `credentials_file` holds one the store still knows) `user`'s key,
    limited to `bucket` (default: the DVC remote's)."""
    root = settings.root_key()
    current = read_key(credentials_file)
    if current is not None and current.access_key_id == root.access_key_id:
        current = None  # written by an older version that handed flows the root key
    if settings.s3_admin_api == "iam":
        client = iam_client(settings.admin_endpoint_url, settings.s3_region, root)
        provisioner: IamProvisioner | MinioProvisioner = IamProvisioner(client)
    else:
        provisioner = MinioProvisioner(
            minio_admin(settings.admin_endpoint_url, settings.s3_region, root)
        )
    return provisioner.ensure(user, bucket or settings.bucket, current)


def write_aws_files(settings: RemoteSettings, root: Path, key: FlowKey) -> list[Path]:
    """botocore's config and credentials files under `root`/aws (`key`: a scoped key)."""
    if key.access_key_id == settings.root_key().access_key_id:
        raise ValueError("refusing to write the store's root key: never the root key")
    # botocore's standard retry mode, 3 attempts in all: an unreachable store fails an
    # attempt in seconds, not after the legacy mode's 5 back-offs for every object (the
    # flow's tasks retry whole attempts with their own back-off, visible in the run).
    aws_config = (
        f"[default]\nregion = {settings.s3_region}\nretry_mode = standard\nmax_attempts = 3\n"
    )
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
    return [root / "aws/config", root / "aws/credentials"]


def write_settings(settings: RemoteSettings, key: FlowKey | None = None) -> list[Path]:
    """Write the files flow containers read (`key`: the flows' S3 key); return their paths."""
    root = settings.settings_dir
    dvc_remote = f"['remote \"storage\"']\n    url = {settings.dvc_remote_url}\n"
    written = []
    if settings.scheme == "s3":
        if settings.s3_endpoint_url:
            dvc_remote += f"    endpointurl = {settings.s3_endpoint_url}\n"
        # Raised, not asserted: this guard must hold under `python -O` too.
        if key is None:
            raise ValueError("an s3:// remote needs the flows' key")
        written += write_aws_files(settings, root, key)
    else:
        if not settings.gcs_credentials_file:
            raise ValueError("GCS_CREDENTIALS_FILE is required for a gs:// remote")
        target = root / "gcs/credentials.json"
        with atomic_path(target, mode=SECRET) as temporary:
            shutil.copyfile(settings.gcs_credentials_file, temporary)
        dvc_remote += f"    credentialpath = {target}\n"
        written.append(target)
    atomic_write_text(root / "dvc/config", dvc_remote, mode=PUBLIC)
    written.append(root / "dvc/config")
    # A remote switched from GCS to S3 or back: the other one's key leaves the flows' reach.
    stale = root / ("gcs/credentials.json" if settings.scheme == "s3" else "aws/credentials")
    stale.unlink(missing_ok=True)
    if settings.mltoy_git_url:
        written += write_git_settings(settings)
    return written


def write_git_settings(settings: RemoteSettings) -> list[Path]:
    """The flows' Git identity: a global git config (GIT_CONFIG_GLOBAL in the image) whose
    credential helper, scoped to the stack's Git server, prints the file beside it."""
    assert settings.mltoy_git_url and settings.git_flow_user and settings.git_flow_password
    root = settings.settings_dir / "git"
    url = urlparse(settings.mltoy_git_url)
    credentials = root / "credentials"
    helper = f'!f() {{ test "$1" = get && cat {credentials}; }}; f'
    quoted = '"' + helper.replace("\\", "\\\\").replace('"', '\\"') + '"'
    atomic_write_text(
        root / "config",
        f'[credential "{url.scheme}://{url.netloc}"]\n    helper = {quoted}\n'
        "[user]\n    name = mltoy flows\n    email = flows@mltoy.invalid\n",
        mode=PUBLIC,
    )
    password = settings.git_flow_password.get_secret_value()
    atomic_write_text(
        credentials, f"username={settings.git_flow_user}\npassword={password}\n", mode=SECRET
    )
    return [root / "config", credentials]


def write_developer_settings(settings: RemoteSettings, key: FlowKey) -> Path:
    """The developer's key, in botocore's format, where only remote-init and
    `make remote-config` read it."""
    path = settings.developer_dir / "aws/credentials"
    atomic_write_text(
        path,
        f"[default]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n",
        mode=SECRET,
    )
    return path


def main() -> int:
    settings = load_settings(RemoteSettings, "remote-init")
    if settings is None:
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
        dev = developer_key(settings)
        if dev is None:
            print("remote-init: no developer key (S3_ADMIN_API=none and no DEV_ACCESS_KEY_ID)")
        else:
            assert dev.access_key_id not in (key.access_key_id, settings.root_key().access_key_id)
            wait_until_usable(s3_client(settings, dev), settings.bucket)
            write_developer_settings(settings, dev)
            print(
                f"remote-init: the developer's key ({settings.dev_user}) is limited to "
                f"{settings.bucket}; `make remote-config` writes it to .dvc/config.local"
            )
    for path in write_settings(settings, key):
        print(f"remote-init: wrote {path}")
    print(f"remote-init: DVC remote 'storage' = {settings.dvc_remote_url}")
    if settings.mlflow_artifacts_url:
        prepare_mlflow_artifacts(settings)
    return 0


def prepare_mlflow_artifacts(settings: RemoteSettings) -> None:
    """MLflow's bucket and its server's scoped key, in the server's settings volume."""
    bucket = settings.mlflow_bucket
    assert bucket
    created = ensure_bucket(settings, bucket)
    print(f"remote-init: MLflow bucket {bucket} {'created' if created else 'exists'}")
    key = mlflow_server_key(settings)
    wait_until_usable(s3_client(settings, key), bucket)
    for path in write_aws_files(settings, settings.mlflow_settings_dir, key):
        print(f"remote-init: wrote {path}")
    print(f"remote-init: MLflow's artifact proxy stores in {settings.mlflow_artifacts_url}")


if __name__ == "__main__":
    sys.exit(main())
