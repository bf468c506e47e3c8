"""Materialise the DVC-tracked raw data from scikit-learn's copy, verified, into DVC.

A fresh clone (or a fresh remote) has `data/raw/iris.csv.dvc` but not the data. The
file is written from scikit-learn's copy; if its MD5 is the one the .dvc file tracks,
it goes into the DVC cache (and, with --push, to the remote), so `dvc repro --pull`,
`dvc status` and `dvc push` treat it as the tracked data it is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from flows.dvc_pipeline import tracked_file
from flows.fingerprint import md5_file
from mltoy.data import write_raw

DVC_FILE = Path("data/raw/iris.csv.dvc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.raw_data", description=__doc__)
    parser.add_argument("--project-dir", type=Path, default=Path("."))
    parser.add_argument("--push", action="store_true", help="also push it to the DVC remote")
    args = parser.parse_args(argv)

    project = args.project_dir
    relpath, expected = tracked_file(project, DVC_FILE)
    data = project / relpath
    if not data.exists():
        write_raw(data)
    actual = md5_file(data)
    if actual != expected:
        print(
            f"raw-data: error: {data} has md5 {actual}, but {DVC_FILE} tracks {expected}; "
            "left as is (restore it with `dvc checkout`, or `dvc add` it if it is new data)",
            file=sys.stderr,
        )
        return 1
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "commit", "--force", "--quiet", str(DVC_FILE)], cwd=project, check=True)
    if args.push:
        subprocess.run([*dvc, "push", str(DVC_FILE)], cwd=project, check=True)
    print(f"raw-data: {data} matches {DVC_FILE} ({expected}){', pushed' if args.push else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
