"""Three pull steps Prefect does not ship, around its own `git_clone` (prefect.yaml).

Pull-step inputs are templated from blocks, variables, the environment and earlier steps'
outputs, not from the flow run's parameters. `revision` makes the `commit` parameter an
output, so `git_clone` fetches exactly that commit (a push trigger or a Custom run sets
it), or the tip of the branch when it is empty (schedules, Quick runs).

`check_dependencies` runs before any of the clone's code is imported: a commit whose
requirements.lock differs from the one this image was built from would run new code on
old dependencies, so the run fails at once, naming the rebuild that fixes it.

`use_remote` makes the stack's remote (`storage`, in the global DVC config that
remote-init writes) the clone's default: its .dvc/config names the embedded `local`.
It is `dvc remote default --local storage` through DVC's own config API, without
starting a `dvc` process (about a second of every run).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

IMAGE_LOCK_HASH = Path("/opt/venv/requirements.lock.sha256")
LOCK_FILE = "requirements.lock"
REBUILD = "make up (it rebuilds the images from your checkout and restarts the stack)"
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class StaleImageError(RuntimeError):
    """The clone's requirements.lock is not the one the image was built from."""


def check_commit(commit: str | None) -> str | None:
    """A full 40-character SHA, or None; anything else is refused with the fix."""
    commit = (commit or "").strip().lower() or None
    if commit is not None and not FULL_SHA.match(commit):
        raise ValueError(
            f"commit {commit!r}: give the full 40-character SHA (git rev-parse {commit})"
        )
    return commit


def revision(branch: str = "main") -> dict[str, Any]:
    """{"branch", "commit_sha"} for git_clone: the run's `commit` parameter or `branch`."""
    from prefect.runtime import flow_run

    commit = check_commit((flow_run.parameters or {}).get("commit"))
    print(f"revision: {'commit ' + commit if commit else 'tip of ' + branch}")
    return {"branch": None if commit else branch, "commit_sha": commit}


def lock_drift(directory: Path, image_hash_file: Path = IMAGE_LOCK_HASH) -> str | None:
    """Why the clone cannot run on this image's venv, or None when the locks match."""
    lock = directory / LOCK_FILE
    if not lock.is_file():
        return None  # nothing pinned: nothing to compare
    if not image_hash_file.is_file():
        return f"{image_hash_file} is missing: this image does not say what it was built from"
    ours = image_hash_file.read_text().split()[0]
    theirs = hashlib.sha256(lock.read_bytes()).hexdigest()
    if ours == theirs:
        return None
    return (
        f"{LOCK_FILE} of this commit (sha256 {theirs[:12]}) is not the one the image was "
        f"built from ({ours[:12]}): its dependencies changed. Rebuild the image: {REBUILD}"
    )


def check_dependencies(directory: str) -> dict[str, str]:
    """Fail the flow run (Failed, not retried, before any of its code is imported) when
    the clone's lock file differs from the image's."""
    reason = lock_drift(Path(directory))
    if reason is None:
        print(f"dependencies: {LOCK_FILE} matches the image")
        return {"dependencies": "match"}
    _fail_flow_run(reason)
    raise StaleImageError(reason)


def _fail_flow_run(message: str) -> None:
    """Set the run Failed with `message`: a pull step that only raised would leave the
    run Crashed with an exit code, and the reason in the log only."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.states import Failed

    run_id = flow_run.id
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Failed(message=message), force=True)


def use_remote(directory: str, name: str = "storage") -> dict[str, str]:
    """Make `name` the default remote of the DVC project in `directory` (its local
    config, as `dvc remote default --local` writes it); like that command, refuse a
    remote that no config level defines."""
    from dvc.config import Config

    dvc_dir = Path(directory) / ".dvc"
    if not dvc_dir.is_dir():
        raise FileNotFoundError(f"{Path(directory).resolve()} is not a DVC project (no .dvc)")
    config = Config(str(dvc_dir))
    if name not in config["remote"]:
        raise ValueError(
            f"DVC remote {name!r} is not configured: remote-init writes it to "
            f"{Config.get_dir('global')}/config (the remote-settings volume)"
        )
    with config.edit("local") as local:
        local["core"]["remote"] = name
    print(f"dvc: default remote {name!r}")
    return {"remote": name}
