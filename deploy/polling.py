"""Waiting for something with a deadline: the one polling loop of the repository.

remote-init waits for a new key to work; the end-to-end tests and the benchmark wait for
runs, containers and states. Poll, never sleep a fixed time; give up with a reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float, what: str, every: float = 2.0) -> T:
    """Call `check` until it returns something (not None), or raise TimeoutError after
    `timeout` seconds naming `what`. `check` runs at least once, even with timeout 0."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
