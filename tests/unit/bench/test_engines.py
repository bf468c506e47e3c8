"""bench/engines.py's plan, against a fake registry stack: bursts on one engine, the join,
bursts on two, and what it makes of them. (Stop 24 emptied this module by accident and no
test noticed: `make bench` would have failed an hour in.)"""

from __future__ import annotations

import contextlib
import statistics
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from bench import engines
from harness.stack import Stack


class FakeApi:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.params: list[float] = []

    def read_deployment_by_name(self, name: str) -> Any:
        return SimpleNamespace(id=name)

    def update_deployment(self, deployment: str, update: Any) -> None:
        self.calls.append(f"limit {deployment} {update.concurrency_limit}")

    def create_flow_run_from_deployment(self, deployment: str, parameters: dict) -> Any:
        self.params.append(parameters["params"]["train"]["C"])
        return SimpleNamespace(id=uuid4())


class FakeRegistryStack:
    set_limit = Stack.set_limit  # the driver's own, on the fake API

    def __init__(self, fail_second_burst: bool = False) -> None:
        self.calls: list[str] = []
        self.api = FakeApi(self.calls)
        self.env = {"MLTOY_WORK_POOL": "pool"}
        self.project = "bench-engines"
        self.engines: list[Any] = []
        self.fail_second_burst = fail_second_burst

    def make_up(self) -> Any:
        self.calls.append("up")
        return SimpleNamespace(returncode=0, stderr="")

    def push(self) -> float:
        self.calls.append("push")
        return 45.0

    @contextlib.contextmanager
    def connected(self) -> Any:
        yield

    def quiet_schedules(self) -> None:
        self.calls.append("quiet")

    def add_engine(self, image: str, workdir: Any) -> Any:
        self.calls.append(f"add {image}")
        engine = SimpleNamespace(container="engine2", client=lambda: "client2")
        self.engines.append(engine)
        return engine

    def join(self, engine: Any) -> float:
        self.calls.append("join")
        return 40.0

    def online_workers(self) -> list[Any]:
        return [object()] * (1 + len(self.engines))

    def wait_finals(self, ids: list[Any], timeout: float) -> dict[Any, Any]:
        self.calls.append(f"burst {len(ids)} on {1 + len(self.engines)}")
        if self.fail_second_burst and self.engines:
            raise TimeoutError("runs not final")
        done = SimpleNamespace(state=SimpleNamespace(is_completed=lambda: True, name="COMPLETED"))
        return dict.fromkeys(ids, done)

    def dump_logs(self, path: Any) -> None:
        self.calls.append("logs")

    def down(self) -> None:
        self.calls.append("down")


class FakeEvents:
    def __init__(self, pool: str, client: Any) -> None:
        self.client = client

    def started(self) -> list[str]:
        return ["c"] * 2

    def close(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, fake_sampler: type) -> Any:
    def install(stack: FakeRegistryStack) -> FakeRegistryStack:
        monkeypatch.setattr(engines.RegistryStack, "with_registry", lambda *a, **kw: stack)
        monkeypatch.setattr(engines, "Sampler", fake_sampler)
        monkeypatch.setattr(engines, "ContainerEvents", FakeEvents)
        monkeypatch.setattr("docker.from_env", lambda: "client1")
        return stack

    return install


PLAN = {"engines_burst": 4, "engines_repeats": 2, "engines_worker_limit": 2}


def test_bursts_on_one_engine_then_the_join_then_bursts_on_two(fake: Any, tmp_path: Any):
    stack = fake(FakeRegistryStack())
    result = engines.run_section({"ENGINE_STANDIN_IMAGE": "standin"}, tmp_path, PLAN)
    trial = engines.TRIAL
    assert stack.calls == [
        "up",
        "push",
        "quiet",
        f"limit {trial} 4",
        "burst 4 on 1",
        "burst 4 on 1",
        "add standin",
        "join",
        "burst 4 on 2",
        "burst 4 on 2",
        "down",
    ]
    assert len(set(stack.api.params)) == 16  # every run trains: no cached result
    assert [b["engines"] for b in result["batches"]] == [1, 1, 2, 2]
    assert [b["runs_per_engine"] for b in result["batches"]][-1] == [2, 2]
    assert result["push_s"] == 45.0 and result["join_s"] == 40.0
    per_min = [b["runs_per_min"] for b in result["batches"]]
    assert result["two_vs_one"] == pytest.approx(
        statistics.median(per_min[2:]) / statistics.median(per_min[:2])
    )
    assert all(not b["failures"] for b in result["batches"])


def test_a_failed_burst_keeps_the_logs_and_takes_the_stack_down(fake: Any, tmp_path: Any):
    stack = fake(FakeRegistryStack(fail_second_burst=True))
    with pytest.raises(TimeoutError):
        engines.run_section({"ENGINE_STANDIN_IMAGE": "standin"}, tmp_path, PLAN)
    assert stack.calls[-2:] == ["logs", "down"]
