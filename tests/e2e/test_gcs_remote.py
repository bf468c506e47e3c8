"""The stack on a gs:// remote, configured as a user configures a real bucket.

The suite's one stack is switched to GCS with the README's own override, compose.gcs.yaml
(DVC_REMOTE_URL=gs://..., GCS_CREDENTIALS_FILE=a service-account key file): remote-init
and deploy run again with it, plus tests/e2e/compose.gcs-emulator.yaml, which adds the
emulator (docker/gcs-standin: it only answers requests with a token got with that key)
and points the GCS clients at it. Both options then run twice in new containers (the
two options at once), the bucket is read back, the key is searched for where it must not
be, and last the remote is pointed at a missing bucket; at the end remote-init and deploy
run again with the suite's settings, so the stack is on its S3 remote again. The runs
are a module fixture the first three tests share; the missing bucket's test comes last.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from harness.gcs import EMULATOR_ENV, ServiceAccount, make_service_account, private_key_lines
from tests.e2e.stack import STAGES, Stack, stage_outcomes

BUCKET = "mltoy-gcs"
EMULATOR = "http://gcs:4443"
MISSING = "gs://no-such-bucket"  # a bucket the emulator does not have
OPTIONS = ("a", "b")
IMAGE_UID = 1000  # the bundle image's user
OVERRIDES = ("compose.gcs.yaml", "tests/e2e/compose.gcs-emulator.yaml")

# Run inside the stack (remote-init's container, which holds the key as a compose secret):
# {object: its bytes hash to its name} for every object in the bucket (True off dvc/files).
BUCKET_SCRIPT = """
import hashlib, json, os, gcsfs
fs = gcsfs.GCSFileSystem(token=os.environ["GCS_CREDENTIALS_FILE"])
def sound(path):
    if "/files/md5/" not in path:
        return True
    return hashlib.md5(fs.cat_file(path)).hexdigest() == "".join(path.split("/")[-2:])
print(json.dumps({path: sound(path) for path in fs.find(os.environ["BUCKET"])}))
"""


class GcsStack:
    """The suite's stack, addressed with the GCS overrides and settings."""

    def __init__(self, stack: Stack, account: ServiceAccount, image: str) -> None:
        self.stack = stack
        self.account = account
        self.outputs: list[str] = []  # what every compose call printed (the key test reads it)
        self.env = {
            **os.environ,
            "DVC_REMOTE_URL": f"gs://{BUCKET}/dvc",
            "MLTOY_RESULTS_URL": "",  # deploy.sh's default: gs://BUCKET/prefect-results
            "GCS_CREDENTIALS_FILE": str(account.key_file),
            "GCS_STANDIN_PUBLIC_KEY_FILE": str(account.public_key_file),
            "GCS_STANDIN_IMAGE": image,
            "GCS_STANDIN_BUCKETS": BUCKET,
        }

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        files = [*self.stack.compose_files, *OVERRIDES]
        argv = [
            *("docker", "compose", "--env-file", str(self.stack.env_file)),
            *("-p", self.stack.project),
            *(arg for name in files for arg in ("-f", str(name))),
            *args,
        ]
        result = subprocess.run(
            argv,
            cwd=self.stack.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.outputs.append(result.stdout + result.stderr)
        assert result.returncode == 0, (
            f"{' '.join(args)}:\n{(result.stdout + result.stderr)[-4000:]}"
        )
        return result

    def bucket(self) -> dict[str, bool]:
        emulator_env = {"STORAGE_EMULATOR_HOST": EMULATOR, **EMULATOR_ENV, "BUCKET": BUCKET}
        env_args = [arg for k, v in emulator_env.items() for arg in ("-e", f"{k}={v}")]
        argv = ("run", "--rm", "--no-deps", "-T", *env_args, "remote-init")
        out = self.compose(*argv, "python", "-c", BUCKET_SCRIPT).stdout
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def gcs(
    stack: Stack, prepared: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GcsStack]:
    account = make_service_account(tmp_path_factory.mktemp("gcs-key"), f"{EMULATOR}/token")
    give_to_the_image_user(account.key_file)
    gcs = GcsStack(stack, account, prepared["GCS_STANDIN_IMAGE"])
    try:
        # As `make up` with compose.gcs.yaml would: the remote's settings, then deploy
        # (which pushes the raw data to the bucket and gives option B its gs:// results).
        gcs.compose("up", "-d", "--no-deps", "gcs")
        gcs.compose("run", "--rm", "--no-deps", "remote-init")
        gcs.compose("up", "-d", "--wait", "--no-deps", "gcs")
        gcs.compose("run", "--rm", "--no-deps", "deploy")
        yield gcs
    finally:
        # Back to the suite's remote: its settings, its deployments; the emulator goes.
        stack.compose("run", "--rm", "--no-deps", "remote-init", timeout=600)
        stack.compose("run", "--rm", "--no-deps", "deploy", timeout=600)
        gcs.compose("rm", "--stop", "--force", "gcs")


def give_to_the_image_user(key_file: Path) -> None:
    """Compose bind-mounts a file secret with its owner and mode: remote-init (uid 1000)
    must be able to read it, as the README tells users. Else readable by all, in a
    directory only we can open."""
    try:
        os.chown(key_file, IMAGE_UID, IMAGE_UID)
    except PermissionError:
        assert key_file.parent.stat().st_mode & 0o077 == 0
        key_file.chmod(0o644)


@dataclass
class Runs:
    first: dict[str, Any]  # option: its first run, final
    second: dict[str, Any]  # option: its second run (a new container), final
    inspected: dict[str, str]  # option: `docker inspect` of its second run's container


@pytest.fixture(scope="module")
def runs(gcs: GcsStack) -> Runs:
    """Each option twice; the two options at once (two deployments, a slot each), so the
    file costs two runs' time rather than four. The second runs' containers are inspected
    while they run (for the key test)."""
    stack = gcs.stack
    first = finals(stack, {option: stack.trigger(option) for option in OPTIONS})
    second_ids = {option: stack.trigger(option) for option in OPTIONS}
    inspected = {option: json.dumps(stack.inspect_running(i)) for option, i in second_ids.items()}
    return Runs(first, finals(stack, second_ids), inspected)


def finals(stack: Stack, ids: dict[str, UUID]) -> dict[str, Any]:
    done = stack.wait_finals(list(ids.values()), timeout=600)
    assert len(done) == len(ids), f"runs still not final after 10 min: {ids}"
    return {option: done[run_id] for option, run_id in ids.items()}


@pytest.mark.parametrize("option", OPTIONS)
def test_a_run_against_gs_completes_and_a_second_skips_every_stage(gcs, runs, option):
    stack, first, second = gcs.stack, runs.first[option], runs.second[option]
    assert first.state.is_completed(), first.state.message
    if option == "b":
        assert first.parameters["results_url"] == f"gs://{BUCKET}/prefect-results"
    ran = stage_outcomes(stack.logs_with(first.id, "stage evaluate: "))
    assert ran == dict.fromkeys(STAGES, "ran"), ran

    assert second.state.is_completed(), second.state.message
    outcomes = stage_outcomes(stack.logs_with(second.id, "stage evaluate: "))
    assert set(outcomes) == set(STAGES)
    assert set(outcomes.values()) <= {"skipped", "restored"}, outcomes
    assert stack.artifact_metrics(second.id) == stack.artifact_metrics(first.id)


def test_the_bucket_holds_sound_objects_run_cache_and_results(gcs, runs):
    objects = gcs.bucket()
    prefix = f"{BUCKET}/"
    md5_objects = [p for p in objects if p.startswith(prefix + "dvc/files/md5/")]
    assert len(md5_objects) >= 6, sorted(objects)  # raw, 2 splits, model, 2 reports
    assert all(objects.values()), [p for p, ok in objects.items() if not ok]
    assert any(p.startswith(prefix + "dvc/runs/") for p in objects), "option A's run cache"
    assert any(p.startswith(prefix + "prefect-results/") for p in objects), "option B's results"


def test_the_service_account_key_appears_in_no_log_image_or_flow_container(gcs, runs):
    stack, secret = gcs.stack, private_key_lines(gcs.account)
    assert len(secret) > 10
    # The services' logs, what remote-init and deploy printed, and the four runs' logs.
    logs = gcs.compose("logs", "--no-color").stdout + "\n".join(gcs.outputs)
    for run in (*runs.first.values(), *runs.second.values()):
        logs += "\n".join(stack.logs(run.id))
    assert len(logs) > 1000  # there is something to search
    assert not [line for line in secret if line in logs]

    # Flow containers as they ran: no key in their configuration (env, labels, command).
    assert set(runs.inspected) == set(OPTIONS)
    for inspected in runs.inspected.values():
        assert "/run/mltoy" in inspected  # the settings volume, where the key is read from
        assert not [line for line in secret if line in inspected]

    # Nor in the history of the images the GCS stack ran (build arguments, commands); their
    # layers are searched for a planted key file by tests/e2e/test_image_secrets.py.
    images = {stack.env["MLTOY_IMAGE"], gcs.env["GCS_STANDIN_IMAGE"]}
    for image in images:
        history = subprocess.run(
            ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
        ).stdout
        assert not [line for line in secret if line in history], image


def test_a_missing_bucket_fails_the_run_at_once_naming_it(gcs):
    """Last: it points the remote at a bucket the emulator does not have (the fixture's
    end puts the suite's remote back)."""
    gcs.compose("run", "--rm", "--no-deps", "-e", f"DVC_REMOTE_URL={MISSING}/dvc", "remote-init")
    run = gcs.stack.run_deployment("a")
    assert run.state.is_failed(), run.state.message
    bucket = MISSING.removeprefix("gs://")
    assert f"bucket '{bucket}' does not exist" in run.state.message, run.state.message
