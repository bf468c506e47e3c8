"""A run here (`make run`, `python -m flows.cli`) sends no flow-run heartbeats: they
serve the stack's zombie-run automation only, and each cost a run up to a second at its
end (flows/cli.py: local_settings). Settings that ask for them keep them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect.flow_engine import FlowRunEngine
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.cli import main


@pytest.fixture
def heartbeats(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The flow-run ids every heartbeat the engine emits is for."""
    sent: list[Any] = []
    emit = FlowRunEngine._emit_flow_run_heartbeat

    def recorded(self: FlowRunEngine, *args: Any, **kwargs: Any) -> None:
        sent.append(self.flow_run.id)
        emit(self, *args, **kwargs)

    monkeypatch.setattr(FlowRunEngine, "_emit_flow_run_heartbeat", recorded)
    return sent


@pytest.mark.parametrize("option", ["a", "b"])
def test_a_local_run_sends_no_heartbeat(project: Path, heartbeats: list[Any], option: str):
    with temporary_settings(restore_defaults={PREFECT_FLOWS_HEARTBEAT_FREQUENCY}):  # a shell's
        assert main([option, "--project-dir", str(project)]) == 0
    assert heartbeats == []


def test_heartbeats_asked_for_are_kept(
    project: Path, heartbeats: list[Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    # ... as Prefect read it when it started (this session's settings have none)
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        assert main(["b", "--project-dir", str(project)]) == 0
    assert len(heartbeats) == 1  # the first one, at the run's start
