"""Both options against a gs:// remote: the GCS stand-in, reached as a real bucket is.

The workspaces are configured as remote-init configures a flow container for GCS (a
gs:// URL and `credentialpath` to a service-account key file); the stand-in only answers
requests carrying a token obtained with that key. STORAGE_EMULATOR_HOST sends every
Google storage client (DVC's gcsfs, option B's content store and Prefect's result
storage) to it, as the stack's emulator run does.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.option_a import pipeline_a
from flows.option_b import pipeline_b
from flows.retry import BACKOFF
from harness.gcs import ServiceAccount, load_standin, make_service_account
from tests.flows.helpers import snapshot
from tests.support import REPO_ROOT, free_port, make_project

ALL = ("prepare", "train", "evaluate")
BUCKET = "mltoy"


@dataclass(frozen=True)
class Gcs:
    endpoint: str
    account: ServiceAccount

    def fs(self, token: str | None = None):
        """A gcsfs client as the flows make one (the key file), or `token` ("anon")."""
        from gcsfs import GCSFileSystem

        return GCSFileSystem(
            endpoint_url=self.endpoint,
            token=token or str(self.account.key_file),
            skip_instance_cache=True,
        )

    def configure(self, project: Path, bucket: str = BUCKET) -> Path:
        """The workspace's default remote, as remote-init writes it for a gs:// URL."""
        (project / ".dvc/config.local").write_text(
            "[core]\n    no_scm = true\n    remote = storage\n"
            f"['remote \"storage\"']\n    url = gs://{bucket}/dvc\n"
            f"    credentialpath = {self.account.key_file}\n"
        )
        return project


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gcs]:
    import gcsfs.core

    # tests/conftest.py turned gcsfs's bucket-layout lookup off before it was imported.
    assert gcsfs.GCSFileSystem is gcsfs.core.GCSFileSystem, "gcsfs would wait on gRPC"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    account = make_service_account(tmp_path_factory.mktemp("gcs-key"), f"{endpoint}/token")
    standin = load_standin()
    from gcp_storage_emulator import server as emulator

    route = emulator.Router.handle
    server = standin.make_server("127.0.0.1", port, account.public_key_file.read_bytes(), [BUCKET])
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("STORAGE_EMULATOR_HOST", endpoint)
            # Prefect's result storage finds the key the default way, as in the image.
            env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account.key_file))
            yield Gcs(endpoint, account)
    finally:
        server.stop()
        emulator.Router.handle = route


def assert_objects_hash_to_their_names(gcs: Gcs) -> int:
    """Every object under dvc/files/md5 is the bytes its path names; return how many."""
    fs = gcs.fs()
    paths = fs.find(f"{BUCKET}/dvc/files/md5")
    for path in paths:
        *_, prefix, rest = path.split("/")
        assert hashlib.md5(fs.cat_file(path)).hexdigest() == prefix + rest, path
    return len(paths)


def workspaces(tmp_path: Path, raw_iris: Path, gcs: Gcs) -> list[Path]:
    """Two workspaces (two containers) on the bucket; the raw data pushed as deploy does."""
    projects = [gcs.configure(make_project(tmp_path / n, raw_iris)) for n in ("one", "two")]
    subprocess.run(
        [sys.executable, "-m", "deploy.raw_data", "--project-dir", str(projects[0]), "--push"],
        check=True,
        cwd=REPO_ROOT,
    )
    (projects[1] / "data/raw/iris.csv").unlink()  # a container starts without data
    return projects


def test_the_standin_refuses_requests_without_the_keys_token(gcs):
    """So a passing run below proves the key file was used."""
    with pytest.raises(Exception, match="401|OAuth"):
        gcs.fs(token="anon").ls(BUCKET)
    assert gcs.fs().ls(BUCKET) is not None


@pytest.mark.slow
def test_option_a_restores_a_fresh_workspace_from_the_gcs_run_cache(tmp_path, raw_iris, gcs):
    one, two = workspaces(tmp_path, raw_iris, gcs)
    first = pipeline_a(project_dir=str(one), pull=True, push=True)
    assert first["stages"] == dict.fromkeys(ALL, "ran")
    assert gcs.fs().find(f"{BUCKET}/dvc/runs"), "the run cache was not pushed to the bucket"

    second = pipeline_a(project_dir=str(two), pull=True, push=True)
    assert set(second["stages"].values()) <= {"skipped", "restored"}, second["stages"]
    assert second["metrics"] == first["metrics"]
    assert snapshot(two) == snapshot(one)
    assert assert_objects_hash_to_their_names(gcs) >= 6  # raw data + five outputs


@pytest.mark.slow
def test_option_b_keeps_outputs_and_results_in_gcs(tmp_path, raw_iris, gcs):
    one, two = workspaces(tmp_path, raw_iris, gcs)
    results = f"gs://{BUCKET}/prefect-results-{tmp_path.name}"
    kwargs = dict(use_remote=True, results_url=results)
    ran = pipeline_b(project_dir=str(one), **kwargs)
    assert ran["stages"] == dict.fromkeys(ALL, "ran")
    assert len(gcs.fs().find(results)) >= len(ALL), "task results are not in the bucket"

    again = pipeline_b(project_dir=str(two), **kwargs)
    assert again["stages"] == dict.fromkeys(ALL, "skipped")
    assert again["metrics"] == ran["metrics"]
    assert snapshot(two) == snapshot(one)
    assert assert_objects_hash_to_their_names(gcs) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("option", ["a", "a-pull", "b"])
def test_a_missing_bucket_fails_at_once_naming_it(tmp_path, raw_iris, gcs, option):
    """A setting to fix, not a fault: no retry, and the message says which bucket."""
    project = gcs.configure(make_project(tmp_path / "p", raw_iris), bucket="no-such-bucket")
    expected = (
        r"remote 'storage' \(gs://no-such-bucket/dvc\): bucket 'no-such-bucket' does not exist"
    )
    started = time.monotonic()
    with pytest.raises(Exception, match=expected):
        if option == "a":
            pipeline_a(project_dir=str(project), pull=False, push=True)
        elif option == "a-pull":  # as the stack's runs: the raw data pulled first
            (project / "data/raw/iris.csv").unlink()
            pipeline_a(project_dir=str(project), pull=True, push=True)
        else:
            pipeline_b(project_dir=str(project), use_remote=True)
    assert time.monotonic() - started < sum(BACKOFF), "a missing bucket was retried"
