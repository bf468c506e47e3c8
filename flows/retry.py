"""When a failed task is worth another attempt: not when its input is wrong.

Transient faults (object store unreachable, server restarting, a flaky stage) get
retries with growing delays; bad params or bad data fail at once, since another attempt
would fail the same way.
"""

from __future__ import annotations

from typing import Any

from mltoy.errors import MltoyInputError

# Seconds before attempts 2, 3 and 4: rides out a store or server restart of ~40 s.
BACKOFF = [2, 10, 30]


def is_bad_input(exc: BaseException) -> bool:
    return isinstance(exc, MltoyInputError) or bool(getattr(exc, "bad_input", False))


def retry_unless_bad_input(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except Exception as exc:  # the task's own exception
        return not is_bad_input(exc)
    return True
