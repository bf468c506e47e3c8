"""`make registry-push` (deploy/registry_push.py): what it refuses before touching Docker."""

from __future__ import annotations

import pytest

from deploy.registry_push import RegistrySettings, main


def settings(**values: str) -> RegistrySettings:
    return RegistrySettings(_env_file=None, registry_password="pw", **values)


def test_images_outside_the_stacks_registry_are_refused_with_the_name_to_use():
    local = settings(mltoy_image="mltoy/bundle:0.1.0", proxy_image="127.0.0.1:5000/p:1")
    with pytest.raises(
        ValueError, match=r"MLTOY_IMAGE=mltoy/bundle:0.1.0 .* 127.0.0.1:5000/bundle:0.1.0"
    ):
        local.check()
    other_port = settings(
        registry_port="5001",
        mltoy_image="127.0.0.1:5000/mltoy/bundle:0.1.0",
        proxy_image="127.0.0.1:5001/mltoy/socket-proxy:0.1.0",
    )
    with pytest.raises(ValueError, match="MLTOY_IMAGE"):
        other_port.check()
    settings(
        mltoy_image="127.0.0.1:5000/mltoy/bundle:0.1.0",
        proxy_image="127.0.0.1:5000/mltoy/socket-proxy:0.1.0",
    ).check()


def test_no_password_is_an_error_naming_it(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGISTRY_PASSWORD", raising=False)
    monkeypatch.setattr(
        RegistrySettings, "model_config", {**RegistrySettings.model_config, "env_file": None}
    )
    assert main() == 2
    assert "registry_password" in capsys.readouterr().err
