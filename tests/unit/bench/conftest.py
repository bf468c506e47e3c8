"""What the bench's section tests share: a CPU sampler that samples nothing."""

from __future__ import annotations

from typing import Any

import pytest


class FakeSampler:
    machine_busy = 0.5

    def __init__(self, *args: Any) -> None:
        pass

    def __enter__(self) -> FakeSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def fake_sampler() -> type[FakeSampler]:
    return FakeSampler
