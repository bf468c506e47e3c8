"""A local sweep trial's own copy of the project, sharing the project's DVC cache.

Two runs in one project directory would mix params and outputs (flows/workspace.py holds
one run per directory), so each local trial runs in a copy. The copy's DVC cache is the
project's (`cache.dir` in the copy's `.dvc/config.local`): DVC's cache is content
addressed and made to be shared between workspaces, so a trial restores what an earlier
trial or run made (option A's run cache, option B's stored outputs) and a repeated sweep
skips every stage. The copy's dvc.lock keeps only entries whose outputs the cache holds
(flows/dvc_lock.py): an entry naming outputs made on another machine would keep DVC from
looking in the run cache, and that trial would retrain on every sweep. The copy is
removed when the trial ends.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.dvc_lock import forget_unrestorable_outputs

# Not part of a workspace: Git, environments, caches, local state, the local remote.
SKIPPED = (
    ".git",
    ".venv",
    ".prefect",
    ".dvc-remote",
    ".pytest_cache",
    ".ruff_cache",
    ".e2e-logs",
    "__pycache__",
    "cache",  # .dvc/cache: shared, not copied
    "tmp",  # .dvc/tmp: locks, DVC's state database
)


def _ignore(directory: str, names: list[str]) -> set[str]:
    at_dvc = Path(directory).name == ".dvc"
    return {name for name in names if name in SKIPPED[:-2] or (at_dvc and name in SKIPPED[-2:])}


@contextmanager
def trial_workspace(project: Path) -> Iterator[Path]:
    from dvc.config import Config

    cache = (project / ".dvc" / "cache").resolve()
    with tempfile.TemporaryDirectory(prefix="mltoy-trial-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(project, copy, ignore=_ignore, symlinks=True)
        with Config(dvc_dir=str(copy / ".dvc")).edit("local") as local:
            local.setdefault("core", {})["no_scm"] = True  # the copy has no .git
            local.setdefault("cache", {})["dir"] = str(cache)
        forget_unrestorable_outputs(copy, cloud=False)
        yield copy
