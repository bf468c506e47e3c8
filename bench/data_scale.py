"""Section 6: the same pipeline on synthetic data of growing size, and the remote's speed.

The pipeline reads iris's columns, so the synthetic data has them: scikit-learn's
`make_classification` (4 features, 3 classes, fixed seed) with the features rounded to 3
decimals and named like iris's, the classes named like its species. It replaces the raw
CSV of a throw-away workspace (`dvc add`, as a user would with new data), then:

- `dvc repro --force` (every stage, no run cache): the time to each stage's start,
  from DVC's own output, split into DVC start-up and each stage with DVC's hashing and
  caching of its outputs;
- each stage function called in-process (what option B does): the compute alone;
- `dvc push` to an empty S3 prefix and `dvc pull` into an empty cache, against a plain
  S3 copy (boto3 `upload_file`/`download_file`) of the same files to the same store.

The object store is moto's S3 server (the stack's stand-in) run locally on 127.0.0.1.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3

from bench.procs import PYTHON, VENV_BIN, child_env, log, run_timed, stop_process_group, wait_http
from bench.stats import summarize
from harness.stack import free_port
from harness.workspace import make_project

STAGES = ("prepare", "train", "evaluate")
CLASSES = ("setosa", "versicolor", "virginica")
BUCKET = "bench"
KEY = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": KEY["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": KEY["aws_secret_access_key"],
    "AWS_DEFAULT_REGION": "us-east-1",
}


def synthetic_csv(rows: int, path: Path) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification

    from mltoy.data import FEATURES, TARGET, write_csv

    features, labels = make_classification(
        n_samples=rows,
        n_features=4,
        n_informative=3,
        n_redundant=1,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    frame = pd.DataFrame(features.round(3), columns=list(FEATURES))
    frame[TARGET] = [CLASSES[label] for label in labels]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(frame, path)


def stage_marks(lines: list[tuple[float, str]], start: float, end: float) -> dict[str, float]:
    """DVC start-up and per-stage seconds from timestamped `dvc repro` output lines."""
    starts = [
        (when, line.split("'")[1]) for when, line in lines if line.startswith("Running stage '")
    ]
    marks: dict[str, float] = {"dvc_startup": (starts[0][0] if starts else end) - start}
    for i, (when, stage) in enumerate(starts):
        marks[stage] = (starts[i + 1][0] if i + 1 < len(starts) else end) - when
    return marks


def timed_repro(project: Path, env: dict[str, str]) -> dict[str, float]:
    start = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        [PYTHON, "-m", "dvc", "repro", "--force"],
        cwd=project,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.perf_counter(), line.strip()))
    end = time.perf_counter()
    if process.returncode != 0:
        raise RuntimeError("dvc repro failed:\n" + "\n".join(line for _, line in lines[-15:]))
    marks = stage_marks(lines, start, end)
    if set(STAGES) - set(marks):
        raise RuntimeError(f"dvc repro --force did not run every stage: {marks}")
    marks["total"] = end - start
    return marks


def pipeline(project: Path) -> tuple[dict[str, list[str]], list[Path]]:
    """Each stage's command and every file DVC tracks (what `dvc push` sends), from
    DVC's own index of the project."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        commands = {s.name: shlex.split(s.cmd) for s in repo.index.stages if getattr(s, "cmd", "")}
        return commands, [Path(out.fs_path) for out in repo.index.outs]


def inprocess_stages(project: Path, commands: dict[str, list[str]]) -> dict[str, float]:
    """Each stage's `python -m mltoy.cli ...` called in-process, as option B does."""
    from mltoy import cli

    times = {}
    for stage in STAGES:
        start = time.perf_counter()
        cli.run(commands[stage][3:], cwd=project)
        times[stage] = time.perf_counter() - start
    return times


class LocalS3:
    """moto's S3 server on a free loopback port, for the lifetime of the section."""

    def __enter__(self) -> LocalS3:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", self.url.rsplit(":", 1)[1]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_http(f"{self.url}/", timeout=60)
        self.client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", **KEY)
        self.client.create_bucket(Bucket=BUCKET)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process_group(self.process)

    def plain_copy(self, files: list[Path], prefix: str, download_to: Path) -> tuple[float, float]:
        """(upload seconds, download seconds) of the files with boto3's managed transfers."""
        start = time.perf_counter()
        for i, path in enumerate(files):
            self.client.upload_file(str(path), BUCKET, f"{prefix}/{i}-{path.name}")
        upload = time.perf_counter() - start
        download_to.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for i, path in enumerate(files):
            key = f"{prefix}/{i}-{path.name}"
            self.client.download_file(BUCKET, key, str(download_to / f"{i}-{path.name}"))
        download = time.perf_counter() - start
        shutil.rmtree(download_to)
        return upload, download


def measure_size(rows: int, workdir: Path, s3: LocalS3, repeats: int) -> dict[str, Any]:
    raw = workdir / f"raw-{rows}.csv"
    synthetic_csv(rows, raw)
    project = make_project(workdir / f"project-{rows}", raw)
    env = child_env({**CREDENTIALS, "PYTHONUNBUFFERED": "1"})
    logs = workdir / "logs" / f"data-{rows}.log"

    def dvc(*args: str) -> float:
        return run_timed([PYTHON, "-m", "dvc", *args], cwd=project, env=env, log_file=logs)[0]

    dvc("add", "data/raw/iris.csv")
    repro = [timed_repro(project, env) for _ in range(repeats)]
    commands, files = pipeline(project)
    scratch = make_project(workdir / f"scratch-{rows}", raw)
    compute = [inprocess_stages(scratch, commands) for _ in range(repeats)]
    size = sum(path.stat().st_size for path in files)
    push, pull, upload, download = [], [], [], []
    for repeat in range(repeats):
        prefix = f"n{rows}-r{repeat}"
        dvc("remote", "add", "--force", "--default", "bench", f"s3://{BUCKET}/{prefix}/dvc")
        dvc("remote", "modify", "bench", "endpointurl", s3.url)
        push.append(dvc("push"))
        shutil.rmtree(project / ".dvc" / "cache")
        for path in files:
            path.unlink()
        pull.append(dvc("pull"))
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise RuntimeError(f"dvc pull did not restore {missing}")
        up, down = s3.plain_copy(files, f"{prefix}/plain", workdir / "download")
        upload.append(up)
        download.append(down)
    mb = size / 2**20
    result = {
        "rows": rows,
        "raw_bytes": raw.stat().st_size,
        "tracked_bytes": size,
        "files": len(files),
        "repro": {key: summarize(r[key] for r in repro) for key in repro[0]},
        "compute": {key: summarize(c[key] for c in compute) for key in STAGES},
        "dvc_push_s": summarize(push),
        "dvc_pull_s": summarize(pull),
        "s3_upload_s": summarize(upload),
        "s3_download_s": summarize(download),
    }
    for name in ("dvc_push_s", "dvc_pull_s", "s3_upload_s", "s3_download_s"):
        result[name[:-2] + "_mb_per_s"] = summarize(mb / t for t in result[name]["values"])
    medians = {key: value["median"] for key, value in result.items() if key.endswith("_s")}
    log(
        f"data {rows} rows ({mb:.1f} MB tracked): repro {result['repro']['total']['median']:.1f}s, "
        "push {dvc_push_s:.1f}s vs upload {s3_upload_s:.1f}s, "
        "pull {dvc_pull_s:.1f}s vs download {s3_download_s:.1f}s".format(**medians)
    )
    return result


def run_section(workdir: Path, sizes: tuple[int, ...], repeats: int) -> dict[str, Any]:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    with LocalS3() as s3:
        results = [measure_size(rows, workdir, s3, repeats) for rows in sizes]
    return {
        "repeats": repeats,
        "sizes": list(sizes),
        "store": "moto S3 server on 127.0.0.1",
        "results": results,
    }
