"""Split one containerized flow run's latency into phases (pure: timestamps in, seconds out).

    trigger ─queue wait─> Pending ─submit─> container created ─container start─> Running
            ─flow run─> Completed

- queue wait: until the worker claims the run (its polling interval dominates);
- submit: the worker prepares the job and asks Docker to create the container;
- container start: Docker starts it, the interpreter imports Prefect and loads the flow;
- flow run: the flow itself, as the engine in the container reports it.

Times come from the server's state history (one clock: the host's) and Docker's events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PHASES = ("queue_wait", "submit", "container_start", "flow_run")


def first(states: Iterable[tuple[str, float]], kind: str) -> float | None:
    times = [when for state, when in states if state == kind]
    return min(times) if times else None


def split(
    created: float,
    states: Iterable[tuple[str, float]],
    container: Mapping[str, float] | None = None,
) -> dict[str, float | None]:
    """{phase: seconds} and `total`; None where a mark is missing.

    `states`: (state type, epoch seconds) of the flow run; `container`: Docker event
    times ({"create": t, "start": t, ...}) of its container.
    """
    states = list(states)
    pending = first(states, "PENDING")
    running = first(states, "RUNNING")
    final = max((when for state, when in states if state == "COMPLETED"), default=None)
    created_container = (container or {}).get("create")

    def span(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else end - start

    if created_container is None:  # no Docker event: one phase from Pending to Running
        submit, start = None, span(pending, running)
    else:
        submit, start = span(pending, created_container), span(created_container, running)
    return {
        "queue_wait": span(created, pending),
        "submit": submit,
        "container_start": start,
        "flow_run": span(running, final),
        "total": span(created, final),
    }
