"""Summaries of repeated measurements: median, min, max (and the raw values)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def summarize(values: Iterable[float | None]) -> dict[str, float | int | list[float] | None]:
    """{n, median, min, max, values}; None values (not measured) are left out."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return {"n": 0, "median": None, "min": None, "max": None, "values": []}
    return {
        "n": len(kept),
        "median": statistics.median(kept),
        "min": min(kept),
        "max": max(kept),
        "values": kept,
    }


def ratio(numerator: dict | None, denominator: dict | None) -> float | None:
    """Ratio of two summaries' medians (None if either is missing or zero)."""
    if not numerator or not denominator:
        return None
    top, bottom = numerator.get("median"), denominator.get("median")
    if top is None or not bottom:
        return None
    return top / bottom
