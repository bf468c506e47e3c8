"""Section 4: the bundle image's size, and its rebuild time after a code-only change.

The rebuild runs on a copy of the build context (the project itself is not edited): the
same command as scripts/e2e-prepare.sh, first unchanged (everything from the layer
cache), then after appending a comment to `mltoy/__init__.py`, which invalidates the
two code layers (`COPY mltoy/`, `COPY flows/`) and what follows them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.procs import REPO_ROOT, log, run_timed
from bench.stats import summarize

REBUILD_TAG = "mltoy/bundle:bench-rebuild"
# Left out of the copy: big or irrelevant trees (.dockerignore drops them anyway).
SKIP = {
    ".git",
    ".venv",
    ".dvc-remote",
    ".prefect",
    "data",
    "models",
    "reports",
    "bench",
    "docs",
    "tests",
    ".pytest_cache",
    ".ruff_cache",
    ".e2e-logs",
    "__pycache__",
}


def image_size(image: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


def image_id(image: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def largest_layers(image: str, count: int = 5) -> list[dict[str, Any]]:
    out = subprocess.run(
        [
            "docker",
            "history",
            "--no-trunc",
            "--human=false",
            "--format",
            "{{.Size}}\t{{.CreatedBy}}",
            image,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    layers = []
    for line in out.splitlines():
        size, _, created_by = line.partition("\t")
        step = " ".join(created_by.replace("/bin/sh -c #(nop) ", "").split())
        layers.append({"bytes": int(size), "step": step[:90] or "(base image)"})
    layers.sort(key=lambda layer: -layer["bytes"])
    return layers[:count]


def venv_packages(image: str, count: int = 10) -> dict[str, Any]:
    """The venv's size and its largest site-packages entries (du inside the image)."""
    script = (
        "du -sk /opt/venv | cut -f1; "
        "find /opt/venv -type d -name __pycache__ -prune -exec du -sk {} + "
        "| awk '{s += $1} END {print s}'; "
        "du -sk /opt/venv/lib/python3*/site-packages/* | sort -rn | head -n " + str(count)
    )
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    largest = []
    for line in out[2:]:
        if "\t" in line:
            kb, path = line.split("\t", 1)
            largest.append({"package": path.rsplit("/", 1)[-1], "bytes": int(kb) * 1024})
    return {
        "venv_bytes": int(out[0]) * 1024,
        "pycache_bytes": int(out[1] or 0) * 1024,
        "largest": largest,
    }


def copy_context(destination: Path) -> Path:
    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        skipped = {n for n in names if n in SKIP or n.endswith(".egg-info")}
        if here.name == ".dvc":
            skipped |= {"cache", "tmp", "config.local"}
        return skipped

    shutil.copytree(REPO_ROOT, destination, ignore=ignore, symlinks=True)
    raw = destination / "data/raw"
    raw.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / "data/raw/iris.csv.dvc", raw / "iris.csv.dvc")
    return destination


def build(context: Path, base_image: str, log_file: Path) -> float:
    lock = hashlib.sha256((context / "requirements.lock").read_bytes()).hexdigest()
    elapsed, _ = run_timed(
        [
            "docker",
            "build",
            "-q",
            "-f",
            "docker/Dockerfile",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "--build-arg",
            f"LOCK_SHA256={lock}",
            "-t",
            REBUILD_TAG,
            ".",
        ],
        cwd=context,
        log_file=log_file,
        timeout=3600,
    )
    return elapsed


def run_section(prepared: dict[str, Any], workdir: Path, repeats: int) -> dict[str, Any]:
    image, base = prepared["MLTOY_IMAGE"], prepared["BASE_IMAGE"]
    context = copy_context(workdir / "context")
    build_log = workdir / "build.log"
    try:
        unchanged = build(context, base, build_log)
        same_image = image_id(REBUILD_TAG) == image_id(image)
        log(f"image: unchanged rebuild {unchanged:.1f}s")
        code_only = []
        for repeat in range(repeats):
            with (context / "mltoy/__init__.py").open("a") as handle:
                handle.write(f"# bench: code-only change {repeat} {time.time()}\n")
            previous = image_id(REBUILD_TAG)
            code_only.append(build(context, base, build_log))
            if previous != image_id(image):  # the tag moved on: drop the image it left
                subprocess.run(["docker", "rmi", previous], capture_output=True, check=False)
            log(f"image: code-only rebuild {repeat + 1}/{repeats}: {code_only[-1]:.1f}s")
        rebuilt_size = image_size(REBUILD_TAG)
    finally:
        subprocess.run(["docker", "rmi", REBUILD_TAG], capture_output=True, check=False)
    return {
        "image": image,
        "base_image": base,
        "size_bytes": image_size(image),
        "base_size_bytes": image_size(base),
        "rebuilt_size_bytes": rebuilt_size,
        "largest_layers": largest_layers(image),
        "venv": venv_packages(image),
        "unchanged_rebuild_s": unchanged,
        "unchanged_rebuild_is_same_image": same_image,
        "code_only_rebuild_s": summarize(code_only),
        "prepare_s": prepared.get("prepare_s"),
        "repeats": repeats,
    }
