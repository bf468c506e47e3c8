"""remote-init against moto's S3 + IAM, in-process and enforcing IAM as the stand-in does:
the bucket, the flows' bucket-scoped key, and the settings files."""

from __future__ import annotations

import configparser
import itertools
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from deploy.flow_identity import FlowKey, read_key, wait_until_usable
from deploy.remote_init import RemoteSettings, ensure_bucket, flow_key, main, write_settings
from tests.support import REPO_ROOT
from tests.unit.deploy.conftest import ROOT_SECRET, ROOT_USER, Store

_names = itertools.count()


@pytest.fixture
def s3_env(monkeypatch, tmp_path, store: Store) -> dict[str, str]:
    """A fresh bucket and flow user per test (the store lives for the module)."""
    n = next(_names)
    env = {
        "DVC_REMOTE_URL": f"s3://mltoy-test-{n}/dvc",
        "S3_ENDPOINT_URL": store.endpoint,
        "S3_ROOT_USER": ROOT_USER,
        "S3_ROOT_PASSWORD": ROOT_SECRET,
        "S3_ADMIN_API": "iam",
        "FLOW_USER": f"mltoy-flows-{n}",
        "SETTINGS_DIR": str(tmp_path / "settings"),
        "DEVELOPER_DIR": str(tmp_path / "developer"),
        "DEV_USER": f"mltoy-developer-{n}",
        "DEV_ACCESS_KEY_ID": "",
        "DEV_SECRET_ACCESS_KEY": "",
        # compose passes these as "" when unset
        "FLOW_ACCESS_KEY_ID": "",
        "FLOW_SECRET_ACCESS_KEY": "",
    }
    return set_env(monkeypatch, env)


def set_env(monkeypatch, env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def flow_key_written(env: dict[str, str]) -> FlowKey:
    key = read_key(Path(env["SETTINGS_DIR"]) / "aws/credentials")
    assert key is not None
    return key


def error_code(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def test_bucket_is_created_once(s3_env, store: Store):
    settings = RemoteSettings()
    assert ensure_bucket(settings) is True
    assert ensure_bucket(settings) is False
    buckets = store.client("s3").list_buckets()["Buckets"]
    assert settings.bucket in [b["Name"] for b in buckets]


def test_flows_get_a_key_limited_to_the_dvc_bucket(s3_env, store: Store):
    assert main() == 0
    key = flow_key_written(s3_env)
    assert key.access_key_id != ROOT_USER and key.secret_access_key != ROOT_SECRET
    bucket = RemoteSettings().bucket
    s3 = store.client("s3", key.access_key_id, key.secret_access_key)
    # What DVC and Prefect's result storage do: put, head, get, list, delete.
    s3.put_object(Bucket=bucket, Key="dvc/files/md5/ab/cd", Body=b"data")
    s3.head_object(Bucket=bucket, Key="dvc/files/md5/ab/cd")
    assert s3.get_object(Bucket=bucket, Key="dvc/files/md5/ab/cd")["Body"].read() == b"data"
    s3.head_bucket(Bucket=bucket)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dvc/")["Contents"]
    assert [o["Key"] for o in listed] == ["dvc/files/md5/ab/cd"]
    s3.delete_object(Bucket=bucket, Key="dvc/files/md5/ab/cd")
    # Nothing else: no new bucket, no listing of all buckets, no other bucket, no IAM.
    other = f"{bucket}-other"
    store.client("s3").create_bucket(Bucket=other)
    assert error_code(lambda: s3.create_bucket(Bucket=f"{bucket}-new")) == "AccessDenied"
    assert error_code(s3.list_buckets) == "AccessDenied"
    assert error_code(lambda: s3.put_object(Bucket=other, Key="x", Body=b"x")) == "AccessDenied"
    assert error_code(lambda: s3.list_objects_v2(Bucket=other)) == "AccessDenied"
    assert error_code(lambda: s3.delete_bucket(Bucket=bucket)) == "AccessDenied"
    iam = store.client("iam", key.access_key_id, key.secret_access_key)
    assert error_code(lambda: iam.create_user(UserName="escalate")) == "AccessDenied"


def test_multipart_uploads_work_with_the_flow_key(s3_env, store: Store):
    """DVC and s3fs upload large files in parts."""
    assert main() == 0
    key = flow_key_written(s3_env)
    bucket = RemoteSettings().bucket
    s3 = store.client("s3", key.access_key_id, key.secret_access_key)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part = s3.upload_part(
        Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"x" * 5 * 2**20
    )
    s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    aborted = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=aborted)
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == 5 * 2**20


def test_rerun_keeps_the_key_and_never_piles_up_keys(s3_env, store: Store):
    iam = store.client("iam")
    user = s3_env["FLOW_USER"]

    def keys() -> list[str]:
        return [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]

    assert main() == 0
    first = flow_key_written(s3_env)
    assert main() == 0  # every `docker compose up`
    assert flow_key_written(s3_env) == first
    assert keys() == [first.access_key_id]
    # A new settings volume (`down -v`) on a store that kept the user: rotate.
    (Path(s3_env["SETTINGS_DIR"]) / "aws/credentials").unlink()
    assert main() == 0
    second = flow_key_written(s3_env)
    assert second != first
    assert keys() == [second.access_key_id]
    old = store.client("s3", first.access_key_id, first.secret_access_key)
    assert error_code(lambda: old.list_objects_v2(Bucket=RemoteSettings().bucket)) in (
        "InvalidAccessKeyId",
        "AccessDenied",
    )


def test_a_root_key_left_by_an_older_version_is_replaced(s3_env):
    credentials = Path(s3_env["SETTINGS_DIR"]) / "aws/credentials"
    credentials.parent.mkdir(parents=True)
    credentials.write_text(
        f"[default]\naws_access_key_id = {ROOT_USER}\naws_secret_access_key = {ROOT_SECRET}\n"
    )
    assert main() == 0
    assert flow_key_written(s3_env).access_key_id != ROOT_USER


def test_no_root_credential_in_any_written_file(s3_env):
    assert main() == 0
    files = [p for p in Path(s3_env["SETTINGS_DIR"]).rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"config", "credentials"}  # aws/*, dvc/config
    for path in files:
        text = path.read_text()
        assert ROOT_SECRET not in text and ROOT_USER not in text, path


def test_settings_files_point_dvc_and_botocore_at_the_remote(s3_env):
    assert main() == 0
    root = Path(s3_env["SETTINGS_DIR"])
    dvc = configparser.ConfigParser()
    dvc.read(root / "dvc/config")
    remote = dvc["'remote \"storage\"'"]  # DVC's section name, quotes included
    assert remote["url"] == s3_env["DVC_REMOTE_URL"]
    assert remote["endpointurl"] == s3_env["S3_ENDPOINT_URL"]
    assert stat.S_IMODE((root / "aws/credentials").stat().st_mode) == 0o600
    key = flow_key_written(s3_env)
    assert key.secret_access_key not in (root / "dvc/config").read_text()


def test_botocore_reads_a_short_retry_policy_from_the_flows_config(s3_env, monkeypatch):
    """An unreachable store must fail an attempt in seconds: the flow's tasks retry."""
    import botocore.session

    assert main() == 0
    monkeypatch.setenv("AWS_CONFIG_FILE", str(Path(s3_env["SETTINGS_DIR"]) / "aws/config"))
    session = botocore.session.Session()
    assert session.get_config_variable("retry_mode") == "standard"
    assert session.get_config_variable("max_attempts") == 3


def test_none_writes_the_given_key(s3_env, store: Store, monkeypatch):
    """S3_ADMIN_API=none: the user made the bucket-scoped key; it is checked, then written."""
    assert main() == 0  # makes the bucket and a scoped key to hand over as "the user's"
    given = flow_key_written(s3_env)
    (Path(s3_env["SETTINGS_DIR"]) / "aws/credentials").unlink()
    monkeypatch.setenv("S3_ADMIN_API", "none")
    monkeypatch.setenv("FLOW_ACCESS_KEY_ID", given.access_key_id)
    monkeypatch.setenv("FLOW_SECRET_ACCESS_KEY", given.secret_access_key)
    assert main() == 0
    assert flow_key_written(s3_env) == given


def test_a_key_that_cannot_use_the_bucket_stops_remote_init(s3_env, store: Store):
    ensure_bucket(RemoteSettings())
    s3 = store.client("s3", "AKIANOSUCHKEY0000000", "nope")
    with pytest.raises(RuntimeError, match="cannot list bucket"):
        wait_until_usable(s3, RemoteSettings().bucket, timeout=0)


_watch: list[tuple[Path, bytes, list[str]]] = []  # (directory, canary, what was seen)
_watcher: list[int] = []  # the thread that watches (others, e.g. moto's, are left alone)
_hooked = False


def _look_for_exposed_canary(event: str, args: tuple) -> None:
    """Before each file operation: is any file holding the canary readable by others?"""
    if event not in ("open", "os.chmod", "os.rename") or not _watch:
        return
    if _watcher != [threading.get_ident()]:
        return
    directory, canary, seen = _watch[-1]
    _watch.pop()  # reading the files below raises "open" events too
    try:
        for path in directory.rglob("*"):
            mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0
            if mode & 0o077 and canary in path.read_bytes():
                seen.append(f"{event} {args[0]}: {path} is {oct(mode)}")
    finally:
        _watch.append((directory, canary, seen))


@contextmanager
def exposures_of(canary: bytes, directory: Path) -> Iterator[list[str]]:
    """Watch every file operation in this process while the block runs (umask 022)."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_look_for_exposed_canary)  # cannot be removed: idles when unwatched
        _hooked = True
    seen: list[str] = []
    previous = os.umask(0o022)
    _watcher[:] = [threading.get_ident()]
    _watch.append((directory, canary, seen))
    try:
        yield seen
    finally:
        _watch.clear()
        _watcher.clear()
        os.umask(previous)


def test_credentials_are_never_readable_by_others_not_even_while_written(s3_env):
    """The key goes into a file that is 0600 before its first byte (not chmod'ed after)."""
    canary = "canary-secret-4d1f6a"
    root = Path(s3_env["SETTINGS_DIR"])
    root.mkdir(parents=True)
    with exposures_of(canary.encode(), root) as seen:
        write_settings(RemoteSettings(), FlowKey("AKIAFLOWKEY000000000", canary))
    assert canary in (root / "aws/credentials").read_text()  # the watch could see it
    assert seen == []
    assert stat.S_IMODE((root / "aws/credentials").stat().st_mode) == 0o600


def test_gcs_key_is_never_readable_by_others_not_even_while_copied(monkeypatch, tmp_path):
    canary = '{"private_key": "canary-gcs-key-93be"}'
    key = tmp_path / "key.json"
    key.write_text(canary)
    monkeypatch.setenv("DVC_REMOTE_URL", "gs://my-bucket/dvc")
    monkeypatch.setenv("GCS_CREDENTIALS_FILE", str(key))
    monkeypatch.setenv("SETTINGS_DIR", str(tmp_path / "settings"))
    (tmp_path / "settings").mkdir()
    with exposures_of(canary.encode(), tmp_path / "settings") as seen:
        write_settings(RemoteSettings())
    written = tmp_path / "settings/gcs/credentials.json"
    assert written.read_text() == canary
    assert seen == []
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_write_settings_refuses_the_root_key(s3_env):
    settings = RemoteSettings()
    with pytest.raises(ValueError, match="never the root key"):
        write_settings(settings, settings.root_key())


def test_the_root_key_guard_holds_under_python_optimize(s3_env):
    """`python -O` strips asserts: the guard must be a real check."""
    script = (
        "from deploy.remote_init import RemoteSettings, write_settings\n"
        "settings = RemoteSettings()\n"
        "write_settings(settings, settings.root_key())\n"
    )
    result = subprocess.run(
        [sys.executable, "-O", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "never the root key" in result.stderr
    assert not (Path(s3_env["SETTINGS_DIR"]) / "aws/credentials").exists()


@pytest.mark.parametrize(
    ("endpoint", "admin", "expected"),
    [
        ("http://s3:9000", "", "http://s3:9000"),  # MinIO, Ceph RGW, the stand-in
        ("https://s3.eu-west-1.amazonaws.com", "", None),  # AWS: IAM's own endpoint
        ("http://seaweed:8333", "http://seaweed:8111", "http://seaweed:8111"),
    ],
)
def test_admin_api_endpoint(s3_env, monkeypatch, endpoint, admin, expected):
    monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("S3_ADMIN_ENDPOINT_URL", admin)
    assert RemoteSettings().admin_endpoint_url == expected


def test_gcs_remote_copies_the_key_and_names_it_in_dvc_config(monkeypatch, tmp_path):
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    monkeypatch.setenv("DVC_REMOTE_URL", "gs://my-bucket/dvc")
    monkeypatch.setenv("GCS_CREDENTIALS_FILE", str(key))
    monkeypatch.setenv("SETTINGS_DIR", str(tmp_path / "settings"))
    write_settings(RemoteSettings())
    config = (tmp_path / "settings/dvc/config").read_text()
    assert "url = gs://my-bucket/dvc" in config
    assert f"credentialpath = {tmp_path / 'settings/gcs/credentials.json'}" in config


def test_switching_the_remote_leaves_no_key_of_the_other_store(s3_env, monkeypatch, tmp_path):
    """S3 -> GCS -> S3: the flows' volume holds only the current remote's key."""
    settings_dir = Path(s3_env["SETTINGS_DIR"])
    s3 = RemoteSettings()
    ensure_bucket(s3)
    write_settings(s3, flow_key(s3))
    assert (settings_dir / "aws/credentials").exists()

    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    monkeypatch.setenv("DVC_REMOTE_URL", "gs://my-bucket/dvc")
    monkeypatch.setenv("GCS_CREDENTIALS_FILE", str(key))
    write_settings(RemoteSettings())
    assert (settings_dir / "gcs/credentials.json").exists()
    assert not (settings_dir / "aws/credentials").exists()

    monkeypatch.setenv("DVC_REMOTE_URL", s3_env["DVC_REMOTE_URL"])
    write_settings(s3, flow_key(s3))
    assert not (settings_dir / "gcs/credentials.json").exists()
    assert "url = s3://" in (settings_dir / "dvc/config").read_text()


S3 = {"DVC_REMOTE_URL": "s3://bucket/dvc", "S3_ROOT_USER": "root", "S3_ROOT_PASSWORD": "pw"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DVC_REMOTE_URL"),
        ({"DVC_REMOTE_URL": "ftp://x/y"}, "DVC_REMOTE_URL"),
        ({"DVC_REMOTE_URL": "s3://bucket/dvc"}, "S3_ROOT_USER and S3_ROOT_PASSWORD are required"),
        ({"DVC_REMOTE_URL": "gs://bucket/dvc"}, "GCS_CREDENTIALS_FILE is required"),
        ({**S3, "S3_ADMIN_API": "ceph"}, "S3_ADMIN_API"),
        # `none` never falls back to the root key.
        (
            {**S3, "S3_ADMIN_API": "none"},
            "S3_ADMIN_API=none needs FLOW_ACCESS_KEY_ID and FLOW_SECRET_ACCESS_KEY",
        ),
        (
            {**S3, "S3_ADMIN_API": "none", "FLOW_ACCESS_KEY_ID": "k"},
            "S3_ADMIN_API=none needs FLOW_ACCESS_KEY_ID and FLOW_SECRET_ACCESS_KEY",
        ),
        (
            {
                **S3,
                "S3_ADMIN_API": "none",
                "FLOW_ACCESS_KEY_ID": "root",
                "FLOW_SECRET_ACCESS_KEY": "pw",
            },
            "FLOW_ACCESS_KEY_ID is the root key",
        ),
        (
            {**S3, "S3_ADMIN_API": "minio", "FLOW_ACCESS_KEY_ID": "k"},
            "only used with S3_ADMIN_API=none",
        ),
        ({**S3, "MLFLOW_ARTIFACTS_URL": "gs://b/x"}, "MLFLOW_ARTIFACTS_URL"),
        (
            {
                "DVC_REMOTE_URL": "gs://bucket/dvc",
                "GCS_CREDENTIALS_FILE": "/k.json",
                "MLFLOW_ARTIFACTS_URL": "s3://mlflow/artifacts",
            },
            "S3_ROOT_USER and S3_ROOT_PASSWORD are required for MLflow's bucket",
        ),
        (
            {
                **S3,
                "S3_ADMIN_API": "none",
                "FLOW_ACCESS_KEY_ID": "k",
                "FLOW_SECRET_ACCESS_KEY": "s",
                "MLFLOW_ARTIFACTS_URL": "s3://mlflow/artifacts",
            },
            "S3_ADMIN_API=none needs MLFLOW_S3_ACCESS_KEY_ID and MLFLOW_S3_SECRET_ACCESS_KEY",
        ),
    ],
)
def test_bad_settings_exit_2_with_a_named_reason(monkeypatch, capsys, env, message):
    for key in (
        "DVC_REMOTE_URL",
        "S3_ROOT_USER",
        "S3_ROOT_PASSWORD",
        "GCS_CREDENTIALS_FILE",
        "S3_ADMIN_API",
        "FLOW_ACCESS_KEY_ID",
        "FLOW_SECRET_ACCESS_KEY",
        "MLFLOW_ARTIFACTS_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main() == 2
    assert message in capsys.readouterr().err


def test_the_developer_gets_its_own_bucket_key_outside_the_flows_volume(s3_env, store: Store):
    assert main() == 0
    flows = flow_key_written(s3_env)
    developer = read_key(Path(s3_env["DEVELOPER_DIR"]) / "aws/credentials")
    assert developer is not None
    assert developer.access_key_id not in (flows.access_key_id, ROOT_USER)
    settings_files = [p for p in Path(s3_env["SETTINGS_DIR"]).rglob("*") if p.is_file()]
    assert not any(developer.secret_access_key in p.read_text() for p in settings_files)
    bucket = RemoteSettings().bucket
    s3 = store.client("s3", developer.access_key_id, developer.secret_access_key)
    s3.put_object(Bucket=bucket, Key="dvc/x", Body=b"x")
    assert error_code(s3.list_buckets) == "AccessDenied"
    assert main() == 0  # a rerun keeps it
    assert read_key(Path(s3_env["DEVELOPER_DIR"]) / "aws/credentials") == developer


def test_the_flows_git_identity_is_a_helper_reading_a_file(s3_env, monkeypatch):
    monkeypatch.setenv("MLTOY_GIT_URL", "http://git:8080/mltoy.git")
    monkeypatch.setenv("GIT_FLOW_USER", "mltoy-flows")
    monkeypatch.setenv("GIT_FLOW_PASSWORD", "git-secret-value")
    assert main() == 0
    root = Path(s3_env["SETTINGS_DIR"]) / "git"
    config = (root / "config").read_text()
    assert '[credential "http://git:8080"]' in config and "git-secret-value" not in config
    assert (root / "credentials").read_text() == (
        "username=mltoy-flows\npassword=git-secret-value\n"
    )
    assert oct((root / "credentials").stat().st_mode & 0o777) == "0o600"
    # git itself reads the helper: it answers with the file's credentials for that host.
    import subprocess

    answer = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=http\nhost=git:8080\n\n",
        env={
            "GIT_CONFIG_GLOBAL": str(root / "config"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "PATH": "/usr/bin:/bin",
            "GIT_TERMINAL_PROMPT": "0",
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "username=mltoy-flows" in answer and "password=git-secret-value" in answer


def test_a_git_url_with_credentials_is_refused(s3_env, monkeypatch):
    monkeypatch.setenv("MLTOY_GIT_URL", "http://u:p@git:8080/mltoy.git")
    monkeypatch.setenv("GIT_FLOW_USER", "mltoy-flows")
    monkeypatch.setenv("GIT_FLOW_PASSWORD", "x")
    assert main() == 2


@pytest.fixture
def mlflow_env(s3_env, monkeypatch, tmp_path) -> dict[str, str]:
    """compose.mlflow.yaml's additions: MLflow's bucket, its server's user and volume."""
    n = next(_names)
    env = {
        "MLFLOW_ARTIFACTS_URL": f"s3://mlflow-test-{n}/artifacts",
        "MLFLOW_S3_USER": f"mltoy-mlflow-{n}",
        "MLFLOW_SETTINGS_DIR": str(tmp_path / "mlflow-server"),
        "MLFLOW_S3_ACCESS_KEY_ID": "",
        "MLFLOW_S3_SECRET_ACCESS_KEY": "",
    }
    return {**s3_env, **set_env(monkeypatch, env)}


def test_mlflow_server_gets_its_own_bucket_and_a_key_limited_to_it(mlflow_env, store: Store):
    assert main() == 0
    server = read_key(Path(mlflow_env["MLFLOW_SETTINGS_DIR"]) / "aws/credentials")
    flows = flow_key_written(mlflow_env)
    assert server is not None and server.access_key_id not in (ROOT_USER, flows.access_key_id)
    settings = RemoteSettings()
    mlflow_bucket, dvc_bucket = settings.mlflow_bucket, settings.bucket
    # The server's proxy writes, reads, lists and deletes in its bucket...
    s3 = store.client("s3", server.access_key_id, server.secret_access_key)
    s3.put_object(Bucket=mlflow_bucket, Key="artifacts/1/model.skops", Body=b"m")
    assert s3.get_object(Bucket=mlflow_bucket, Key="artifacts/1/model.skops")["Body"].read()
    s3.list_objects_v2(Bucket=mlflow_bucket, Prefix="artifacts/")
    # ...and nothing in the DVC bucket; the flows' key nothing in MLflow's.
    assert error_code(lambda: s3.list_objects_v2(Bucket=dvc_bucket)) == "AccessDenied"
    flow_s3 = store.client("s3", flows.access_key_id, flows.secret_access_key)
    assert error_code(lambda: flow_s3.list_objects_v2(Bucket=mlflow_bucket)) == "AccessDenied"
    # Nothing of it lands where flow containers look.
    flows_files = [p for p in Path(mlflow_env["SETTINGS_DIR"]).rglob("*") if p.is_file()]
    assert all(server.secret_access_key not in p.read_text() for p in flows_files)
    # Every `up` keeps it.
    assert main() == 0
    assert read_key(Path(mlflow_env["MLFLOW_SETTINGS_DIR"]) / "aws/credentials") == server


def test_without_mlflow_nothing_of_it_is_made(s3_env, store: Store, tmp_path):
    assert main() == 0
    assert RemoteSettings().mlflow_bucket is None
    assert not (tmp_path / "mlflow-server").exists()
