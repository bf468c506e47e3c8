"""dvc.lock entries that name outputs nobody can restore: let DVC's run cache answer.

A trained model's bytes depend on the BLAS kernel the CPU selects (measured: the same
commit gives another `models/model.joblib` md5 on an AMD EPYC than on the machine that
wrote the committed dvc.lock; the metrics are identical). A lock committed on one machine
may therefore name outputs that no cache or remote holds. `dvc repro --pull` trusts the
lock: it fails to pull them and reruns the stage, without consulting the run cache (DVC
3.67 `StageCache.restore` only reads the run cache for a stage that changed), so a stack
would retrain on every run. Dropping such entries from the workspace's lock makes DVC look
the stage up in the run cache, restoring what an earlier run here produced.

The same holds without a remote: a local sweep's trial runs on a copy of the project whose
lock was never reproduced here (flows/trial_workspace.py); with the lock's outputs in no
cache, DVC would retrain a trial whose params equal the lock's on every sweep.
"""

from __future__ import annotations

import os
from pathlib import Path


def forget_unrestorable_outputs(project: Path, cloud: bool = True) -> list[str]:
    """Drop the lock entries of stages whose outputs are in no cache, remote or workspace.

    Returns the stage names dropped. `cloud`: also ask the default remote (`dvc status
    --cloud`); without it, only the cache counts.
    """
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(str(project)) as repo:
        status = repo.status(cloud=True).items() if cloud else ()
        missing = {name for name, state in status if state == "missing"}
        dropped = []
        for stage in repo.index.stages:
            if not isinstance(stage, PipelineStage):
                continue  # a .dvc file: raw data, not a stage's result
            outs = {os.path.relpath(out.fs_path, repo.root_dir): out for out in stage.outs}
            unrestorable = [
                path
                for path, out in outs.items()
                if (path in missing if cloud else out.use_cache and out.changed_cache())
            ]
            if unrestorable and not all((project / out).exists() for out in unrestorable):
                stage.dvcfile._lockfile.remove_stage(stage)
                dropped.append(stage.name)
    return dropped
