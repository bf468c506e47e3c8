"""Each pin has one home: image names and tags in compose.yaml, uv's version in the dev
lock. The copies that remain (documentation, a second compose file) must agree."""

from __future__ import annotations

import re

from harness import REPO_ROOT

DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def compose_defaults(name: str) -> dict[str, str]:
    return dict(DEFAULT.findall((REPO_ROOT / name).read_text()))


def test_env_example_documents_compose_yaml_image_defaults():
    """compose.yaml's, and for MLflow's server and the registry (an override's own image)
    compose.mlflow.yaml's and compose.registry.yaml's."""
    env_example = (REPO_ROOT / ".env.example").read_text()
    documented = re.findall(r"^# (\w+_IMAGE)=(\S*)", env_example, re.M)
    defaults = {
        **compose_defaults("compose.mlflow.yaml"),
        **compose_defaults("compose.registry.yaml"),
        **compose_defaults("compose.yaml"),
    }
    assert len(documented) >= 6
    for name, value in documented:
        assert defaults.get(name, "") == value, f".env.example documents {name}={value}"


def test_the_standin_and_registry_overrides_build_on_compose_yaml_base_image():
    base = compose_defaults("compose.yaml")["BASE_IMAGE"]
    assert compose_defaults("compose.standin.yaml")["BASE_IMAGE"] == base
    assert compose_defaults("compose.registry.yaml")["BASE_IMAGE"] == base


def test_the_mlflow_override_repeats_compose_yaml_images_unchanged():
    """It runs the bundle image too (mlflow-init, mlflow-users) and builds on the same base."""
    ours, mlflow = compose_defaults("compose.yaml"), compose_defaults("compose.mlflow.yaml")
    for name in ("BASE_IMAGE", "MLTOY_IMAGE"):
        assert mlflow[name] == ours[name], name


def test_dockerfiles_take_their_base_image_from_compose():
    for dockerfile in (REPO_ROOT / "docker").rglob("Dockerfile"):
        args = re.findall(r"^ARG BASE_IMAGE(\S*)", dockerfile.read_text(), re.M)
        assert args == [""], f"{dockerfile}: a default base image of its own"


def test_uv_is_pinned_in_the_dev_lock_only():
    (pin,) = re.findall(r"^uv==(\S+)$", (REPO_ROOT / "requirements-dev.lock").read_text(), re.M)
    assert pin
    for path in [
        REPO_ROOT / "scripts" / "setup-venv.sh",
        *(REPO_ROOT / "docker").rglob("Dockerfile"),
        REPO_ROOT / "docker" / "builder.sh",
    ]:
        assert not re.search(r"uv==\d|UV_VERSION=\d", path.read_text()), path
