"""No secret reaches an image: canaries are planted before the images are built.

A copy of the repository gets secrets where people leave them (a `.env`, a cloud key
file, an SSH key, AWS credentials, a `.env.local`, in the directories the images copy)
and one harmless control string in a file the bundle image must contain (deploy/). Every image is
built from that copy with the real Dockerfiles (the layer cache makes this cheap after
scripts/e2e-prepare.sh), then every layer (`docker save`: files, including ones a later
layer deletes) and the history and configuration are searched: the control string must
be found (the search works), no canary may be. The build context itself, and the
CA-staging script's and the Dockerfile's refusal of private keys, are checked too.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

TAG = "canary"
IMAGES = {  # image: its Dockerfile
    "bundle": "docker/Dockerfile",
    "socket-proxy": "docker/socket-proxy/Dockerfile",
    "s3-standin": "docker/s3-standin/Dockerfile",
    "postgres-standin": "docker/postgres-standin/Dockerfile",
    "git-server": "docker/git-server/Dockerfile",
    "mlflow": "docker/mlflow/Dockerfile",
}


def canary() -> str:
    return f"canary-{secrets.token_hex(12)}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """{relative path: canary} planted in a copy of the repo, plus the control."""
    return {
        ".env": canary(),
        ".env.local": canary(),
        "deploy/.env": canary(),
        "deploy/gcs-service-account.json": canary(),
        "flows/.env.production": canary(),
        "mltoy/id_rsa": canary(),
        "mltoy/.aws/credentials": canary(),
        "deploy/tls.key": canary(),
        "flows/notes/token.txt": canary(),
        "docker/certs/proxy-ca.key": canary(),
        "data/raw/secrets.yaml": canary(),
        "CONTROL": canary(),  # appended to deploy/__init__.py: must be found
    }


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory, planted: dict[str, str]) -> Path:
    """The repository's tracked files and staged CA certificates, plus the canaries."""
    root = tmp_path_factory.mktemp("canary-context")
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    staged = [p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "docker/certs").glob("*.crt")]
    for relpath in [*filter(None, tracked), *map(str, staged)]:
        source = REPO_ROOT / relpath
        if source.is_file():
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / relpath)
    for relpath, value in planted.items():
        if relpath == "CONTROL":
            with open(root / "deploy/__init__.py", "a") as init:
                init.write(f"# {value}\n")
            continue
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if relpath.endswith(".json"):
            target.write_text(json.dumps({"type": "service_account", "private_key": value}))
        elif relpath.endswith(("id_rsa", ".key")):
            target.write_text(f"-----BEGIN PRIVATE KEY-----\n{value}\n-----END PRIVATE KEY-----\n")
        else:
            target.write_text(f"SECRET={value}\n")
    return root


def build(context: Path, dockerfile: str, tag: str, base: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        # --force-rm: a build that fails (as one test wants) leaves no stopped container
        ["docker", "build", "-q", "--force-rm", "-f", dockerfile]
        + ["--build-arg", f"BASE_IMAGE={base}", "-t", tag, "."],
        cwd=context,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def images(context: Path, prepared: dict[str, str]) -> Iterator[list[str]]:
    """Every image, built from the planted context."""
    built = []
    try:
        for name, dockerfile in IMAGES.items():
            tag = f"mltoy/{name}:{TAG}-{secrets.token_hex(3)}"
            result = build(context, dockerfile, tag, prepared["BASE_IMAGE"])
            assert result.returncode == 0, result.stderr[-3000:]
            built.append(tag)
        yield built
    finally:
        if built:
            subprocess.run(["docker", "rmi", "-f", *built], capture_output=True)


def found_in(image: str, needles: list[str]) -> set[str]:
    """Which needles occur in the image's layers (every file of every layer), its
    configuration (environment, labels, history) or `docker history`."""
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {needle for needle in needles if needle in history}
    encoded = [needle.encode() for needle in needles]
    overlap = max(map(len, encoded))
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    assert save.stdout is not None
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for member in archive:
            stream = archive.extractfile(member) if member.isfile() else None
            if stream is None:
                continue
            tail = b""
            while chunk := stream.read(1 << 20):
                window = tail + chunk
                found |= {n.decode() for n in encoded if n in window}
                tail = window[-overlap:]
    assert save.wait() == 0
    return found


def test_no_canary_reaches_any_image(images: list[str], planted: dict[str, str]):
    secrets_planted = [value for key, value in planted.items() if key != "CONTROL"]
    for image in images:
        found = found_in(image, [*secrets_planted, planted["CONTROL"]])
        if "bundle" in image:
            assert planted["CONTROL"] in found, "the search must find the control string"
        leaked = {path for path, value in planted.items() if value in found} - {"CONTROL"}
        assert not leaked, f"{image} holds the canaries planted in {sorted(leaked)}"


def test_the_build_context_holds_only_what_the_images_copy(context: Path, prepared):
    """The context the engine receives (.dockerignore applied), listed from an image."""
    tag = f"mltoy/context-listing:{TAG}-{secrets.token_hex(3)}"
    dockerfile = f"FROM {prepared['BASE_IMAGE']}\nCOPY . /context\n"
    build_ = subprocess.run(
        ["docker", "build", "-q", "-f", "-", "-t", tag, "."],
        cwd=context,
        input=dockerfile,
        capture_output=True,
        text=True,
    )
    assert build_.returncode == 0, build_.stderr[-2000:]
    try:
        listing = subprocess.run(
            ["docker", "run", "--rm", tag, "find", "/context", "-type", "f"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    files = {path.removeprefix("/context/") for path in listing}
    assert {"requirements.lock", "deploy/__init__.py", "docker/Dockerfile"} <= files
    assert not any(
        path.startswith(("tests/", ".git/", "docs/", "bench/", "flows/")) for path in files
    )
    # Of the project's code, only what the tooling imports (mltoy.io's atomic writes).
    assert {path for path in files if path.startswith("mltoy/")} == {
        "mltoy/__init__.py",
        "mltoy/io.py",
    }
    for planted_path in ("deploy/gcs-service-account.json", ".env", "mltoy/id_rsa"):
        assert planted_path not in files


def test_a_private_key_in_docker_certs_stops_the_build(context: Path, prepared):
    """A key named like a certificate passes .dockerignore; the Dockerfile refuses it
    (in its first steps: this build stops within seconds)."""
    key = context / "docker/certs/disguised.crt"
    key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    try:
        tag = f"mltoy/bundle:{TAG}-refused"
        result = build(context, "docker/Dockerfile", tag, prepared["BASE_IMAGE"])
    finally:
        key.unlink()
    assert result.returncode != 0
    assert "disguised.crt" in result.stdout + result.stderr
    assert "hold a private key" in result.stdout + result.stderr


def test_ca_staging_refuses_a_private_key(tmp_path: Path):
    """scripts/stage-ca-certs.sh, copied alone: it stages into its own tree's docker/certs."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO_ROOT / "scripts/stage-ca-certs.sh", tmp_path / "scripts")
    source = tmp_path / "ca"
    source.mkdir()
    (source / "corporate.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        "-----BEGIN RSA PRIVATE KEY-----\nBBBB\n-----END RSA PRIVATE KEY-----\n"
    )
    result = subprocess.run(
        ["bash", "scripts/stage-ca-certs.sh"],
        cwd=tmp_path,
        env={"CA_CERTS_SRC": str(source), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "corporate.crt contains a private key" in result.stderr
    staged = list((tmp_path / "docker/certs").glob("*.crt"))
    assert not any("PRIVATE KEY" in path.read_text() for path in staged)
