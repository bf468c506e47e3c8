"""remote-init against a real S3 server (moto's, in-process): bucket and settings files."""

from __future__ import annotations

import configparser
import stat
from collections.abc import Iterator

import pytest
from botocore.session import get_session
from moto.server import ThreadedMotoServer

from deploy.remote_init import RemoteSettings, ensure_bucket, main, write_settings


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch, tmp_path, s3_endpoint) -> RemoteSettings:
    for key, value in {
        "DVC_REMOTE_URL": "s3://mltoy-test/dvc",
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_ROOT_USER": "root-user",
        "S3_ROOT_PASSWORD": "root-secret-value",
        "SETTINGS_DIR": str(tmp_path / "settings"),
        "FLOW_ACCESS_KEY_ID": "",
        "FLOW_SECRET_ACCESS_KEY": "",
    }.items():
        monkeypatch.setenv(key, value)
    return RemoteSettings()


def test_bucket_is_created_once(s3_env):
    assert ensure_bucket(s3_env) is True
    assert ensure_bucket(s3_env) is False
    client = get_session().create_client(
        "s3",
        endpoint_url=s3_env.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    assert "mltoy-test" in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_settings_files_point_dvc_and_botocore_at_the_remote(s3_env, tmp_path):
    write_settings(s3_env)
    root = tmp_path / "settings"
    dvc = configparser.ConfigParser()
    dvc.read(root / "dvc/config")
    remote = dvc["'remote \"storage\"'"]  # DVC's section name, quotes included
    assert remote["url"] == "s3://mltoy-test/dvc"
    assert remote["endpointurl"] == s3_env.s3_endpoint_url
    credentials = configparser.ConfigParser()
    credentials.read(root / "aws/credentials")
    # No flow key given (compose passes ""): the flows get the root key.
    assert credentials["default"]["aws_secret_access_key"] == "root-secret-value"
    assert stat.S_IMODE((root / "aws/credentials").stat().st_mode) == 0o600
    assert "root-secret-value" not in (root / "dvc/config").read_text()


def test_a_separate_flow_key_is_preferred(s3_env, monkeypatch, tmp_path):
    monkeypatch.setenv("FLOW_ACCESS_KEY_ID", "flow-user")
    monkeypatch.setenv("FLOW_SECRET_ACCESS_KEY", "flow-secret")
    write_settings(RemoteSettings())
    text = (tmp_path / "settings/aws/credentials").read_text()
    assert "flow-secret" in text and "root-secret-value" not in text


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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DVC_REMOTE_URL"),
        ({"DVC_REMOTE_URL": "ftp://x/y"}, "DVC_REMOTE_URL"),
        ({"DVC_REMOTE_URL": "s3://bucket/dvc"}, "S3_ROOT_USER and S3_ROOT_PASSWORD are required"),
        ({"DVC_REMOTE_URL": "gs://bucket/dvc"}, "GCS_CREDENTIALS_FILE is required"),
    ],
)
def test_bad_settings_exit_2_with_a_named_reason(monkeypatch, capsys, env, message):
    for key in ("DVC_REMOTE_URL", "S3_ROOT_USER", "S3_ROOT_PASSWORD", "GCS_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main() == 2
    assert message in capsys.readouterr().err
