"""Section 4: the bundle image's size, and its rebuild time after a code-only change.

The image holds no project code (flow runs clone their commit): a change to `mltoy/` or
`flows/` needs no rebuild at all. The code it does hold is the stack's tooling,
`deploy/`. The rebuild runs on a copy of the build context (the project itself is not
edited): the same command as scripts/e2e-prepare.sh, first unchanged (everything from
the layer cache), then after appending a comment to `deploy/__init__.py`, which
invalidates the `COPY deploy/` layer and what follows it.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench.procs import log, run_timed
from bench.stack import TAG
from bench.stats import summarize
from harness import REPO_ROOT

REBUILD_TAG = f"mltoy/bundle:{TAG}-rebuild"
CHANGED = "deploy/__init__.py"  # the code the image holds: the stack's tooling
# Left out of the copy: big or irrelevant trees (.dockerignore drops them anyway).
SKIP = {".git", ".venv", ".dvc-remote", ".prefect", "data", "models", "reports", "bench", "docs"}
SKIP |= {"tests", ".pytest_cache", ".ruff_cache", ".e2e-logs", "__pycache__"}


def largest_layers(image: Any, count: int = 5) -> list[dict[str, Any]]:
    layers = []
    for layer in image.history():
        step = " ".join(layer["CreatedBy"].replace("/bin/sh -c #(nop) ", "").split())
        layers.append({"bytes": layer["Size"], "step": step[:90] or "(base image)"})
    return sorted(layers, key=lambda layer: -layer["bytes"])[:count]


def venv_packages(engine: Any, image: str, count: int = 10) -> dict[str, Any]:
    """The venv's size and its largest site-packages entries (du inside the image)."""
    script = (
        "du -sk /opt/venv | cut -f1; "
        "find /opt/venv -type d -name __pycache__ -prune -exec du -sk {} + "
        "| awk '{s += $1} END {print s}'; "
        "du -sk /opt/venv/lib/python3*/site-packages/* | sort -rn | head -n " + str(count)
    )
    out = engine.containers.run(
        image, ["-c", script], entrypoint="sh", network_mode="none", remove=True
    )
    venv_kb, pycache_kb, *largest = out.decode().split("\n")
    return {
        "venv_bytes": int(venv_kb) * 1024,
        "pycache_bytes": int(pycache_kb or 0) * 1024,
        "largest": [
            {"package": path.rsplit("/", 1)[-1], "bytes": int(kb) * 1024}
            for kb, path in (line.split("\t", 1) for line in largest if "\t" in line)
        ],
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
    import docker

    engine = docker.from_env()
    image, base = prepared["MLTOY_IMAGE"], prepared["BASE_IMAGE"]
    context = copy_context(workdir / "context")
    build_log = workdir / "build.log"
    try:
        unchanged = build(context, base, build_log)
        same_image = engine.images.get(REBUILD_TAG).id == engine.images.get(image).id
        log(f"image: unchanged rebuild {unchanged:.1f}s")
        code_only = []
        for repeat in range(repeats):
            with (context / CHANGED).open("a") as handle:
                handle.write(f"# bench: code-only change {repeat} {time.time()}\n")
            previous = engine.images.get(REBUILD_TAG).id
            code_only.append(build(context, base, build_log))
            if previous != engine.images.get(image).id:  # the tag moved on: drop what it left
                with suppress(docker.errors.APIError):
                    engine.images.remove(previous)
            log(f"image: code-only rebuild {repeat + 1}/{repeats}: {code_only[-1]:.1f}s")
        rebuilt_size = engine.images.get(REBUILD_TAG).attrs["Size"]
    finally:
        with suppress(docker.errors.APIError):
            engine.images.remove(REBUILD_TAG)
    bundle = engine.images.get(image)
    return {
        "image": image,
        "base_image": base,
        "size_bytes": bundle.attrs["Size"],
        "base_size_bytes": engine.images.get(base).attrs["Size"],
        "rebuilt_size_bytes": rebuilt_size,
        "largest_layers": largest_layers(bundle),
        "venv": venv_packages(engine, image),
        "unchanged_rebuild_s": unchanged,
        "unchanged_rebuild_is_same_image": same_image,
        "code_only_rebuild_s": summarize(code_only),
        "changed_file": CHANGED,
        "prepare_s": prepared.get("prepare_s"),
        "repeats": repeats,
    }
