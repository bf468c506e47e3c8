"""The report's summary chart (docs/benchmarks.png), drawn with matplotlib.

One panel per measured section, each a set of horizontal bars: a bar is its median,
split into stacked parts where there are some (the latency phases, the stages of `dvc
repro`), with a min..max whisker and a note on its right, and a dashed line where a
target applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import PHASE_NAMES, TARGETS, scale_groups, times
from bench.stats import ratio
from bench.timeline import PHASES

SHORT = {
    "dvc": "dvc repro",
    "a_cli": "A CLI",
    "b_cli": "B CLI",
    "a_inproc": "A in-process",
    "b_inproc": "B in-process",
    "make_run": "make run",
}


@dataclass
class Panel:
    title: str
    legend: list[str] = field(default_factory=list)  # names of a bar's stacked parts
    target: float | None = None
    unit: str = "s"
    bars: list[tuple[str, list[float], float, float, str]] = field(default_factory=list)

    def bar(self, label: str, parts: list[float], summary: dict, note: str = "") -> None:
        self.bars.append((label, parts, summary["min"], summary["max"], note))


def panels(r: dict[str, Any]) -> list[Panel]:
    found = []
    local = r.get("local") or {}
    for kind, title in (("noop", "Local no-op run"), ("full", "Local run after a train change")):
        rows = local.get(kind) or {}
        limit = TARGETS["a_noop_ratio"]
        target = limit * rows["dvc"]["median"] if kind == "noop" and "dvc" in rows else None
        dashed = f"; dashed: {limit:g}x dvc repro (option A's target)" if target else ""
        found.append(Panel(f"{title}, s (bar: median, whisker: min–max{dashed})", target=target))
        for variant in (variant for variant in SHORT if variant in rows):
            cell = rows[variant]
            note = times(ratio(cell, rows.get("dvc")))
            found[-1].bar(SHORT[variant], [cell["median"]], cell, note)
    latency = (r.get("latency") or {}).get("results", {})
    title = f"Containerized trigger -> Completed, s (dashed: {TARGETS['warm_s']:.0f} s)"
    found.append(Panel(title, list(PHASE_NAMES.values()), TARGETS["warm_s"]))
    for worker, polling in (("default", "5 s"), ("tuned", "1 s")):
        for key in ("a_cold", "a_warm", "b_cold", "b_warm"):
            cell = latency.get(worker, {}).get(key)
            if cell and cell["total"]["median"] is not None:
                parts = [cell[phase]["median"] or 0.0 for phase in PHASES]
                found[-1].bar(f"{key[0].upper()} {key[2:]}, {polling} poll", parts, cell["total"])
    found.append(Panel("Scale: throughput (concurrency limit in brackets)", unit="runs/min"))
    for g in scale_groups((r.get("scale") or {}).get("batches", [])):
        label = f"{g['option'].upper()} N={g['n']} [{g['limit']}]"
        note = f"{len(g['failures'])} failed"
        found[-1].bar(label, [g["throughput"]["median"]], g["throughput"], note)
    stages = ["DVC start-up", "prepare", "train", "evaluate"]
    found.append(Panel("Data scale: dvc repro --force, s (median parts)", stages))
    for x in (r.get("data") or {}).get("results", []):
        parts = [x["repro"][p]["median"] for p in ("dvc_startup", "prepare", "train", "evaluate")]
        found[-1].bar(f"{x['rows']:,} rows", parts, x["repro"]["total"])
    return [panel for panel in found if panel.bars]


def chart(r: dict[str, Any], path: Path) -> bool:
    """Draw the chart of whatever was measured; False (and no file) if nothing was."""
    drawn = panels(r)
    if not drawn:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only: no display
    import matplotlib.pyplot as plt

    heights = [len(panel.bars) + 1.5 for panel in drawn]
    size = (11, 0.3 * sum(heights) + 0.6 * len(drawn))
    figure, axes = plt.subplots(
        len(drawn), 1, figsize=size, squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, panel in zip(axes[:, 0], drawn, strict=True):
        labels, parts, lows, highs, notes = zip(*panel.bars, strict=True)
        rows = range(len(labels))
        left = [0.0] * len(labels)
        for i, widths in enumerate(zip(*parts, strict=True)):
            name = panel.legend[i] if panel.legend else None
            ax.barh(rows, widths, left=left, color=f"C{i}", label=name, height=0.6)
            left = [start + width for start, width in zip(left, widths, strict=True)]
        ax.hlines(rows, lows, highs, color="black", linewidth=1)
        ax.plot([*lows, *highs], [*rows, *rows], "|", color="black", markersize=10)
        for row, note in zip(rows, notes, strict=True):
            ax.annotate(note, (1.01, row), xycoords=("axes fraction", "data"), va="center")
        if panel.target is not None:
            ax.axvline(panel.target, color="C3", linestyle="--", linewidth=1)
        ax.set_yticks(list(rows), labels)
        ax.invert_yaxis()
        ax.set_xlim(left=0)
        ax.set_xlabel(panel.unit)
        ax.set_title(panel.title, loc="left", fontsize=11)
        if panel.legend:
            ax.legend(
                ncols=len(panel.legend),
                fontsize=8,
                frameon=False,
                loc="lower right",
                bbox_to_anchor=(1.0, 1.0),
            )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
