"""A tiny PNG bar chart in pure Python (zlib + struct): no plotting library needed.

`Canvas` is an RGB pixel buffer with rectangles and 5x7 bitmap text (upper case, digits,
a little punctuation); `bar_chart` draws horizontal bars in panels, each bar a stack of
coloured segments (its median parts) with a min..max whisker.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

Color = tuple[int, int, int]
WHITE, BLACK, GREY, LIGHT = (255, 255, 255), (30, 30, 30), (120, 120, 120), (225, 225, 225)
PALETTE: tuple[Color, ...] = (
    (70, 130, 180),
    (240, 160, 60),
    (110, 180, 110),
    (200, 90, 90),
    (150, 120, 200),
)

# 5x7 glyphs: one hex number per row, bit 4 is the leftmost column.
_FONT = {
    "0": "0E 11 13 15 19 11 0E",
    "1": "04 0C 04 04 04 04 0E",
    "2": "0E 11 01 02 04 08 1F",
    "3": "1F 02 04 02 01 11 0E",
    "4": "02 06 0A 12 1F 02 02",
    "5": "1F 10 1E 01 01 11 0E",
    "6": "06 08 10 1E 11 11 0E",
    "7": "1F 01 02 04 08 08 08",
    "8": "0E 11 11 0E 11 11 0E",
    "9": "0E 11 11 0F 01 02 0C",
    "A": "0E 11 11 11 1F 11 11",
    "B": "1E 11 11 1E 11 11 1E",
    "C": "0E 11 10 10 10 11 0E",
    "D": "1C 12 11 11 11 12 1C",
    "E": "1F 10 10 1E 10 10 1F",
    "F": "1F 10 10 1E 10 10 10",
    "G": "0E 11 10 17 11 11 0F",
    "H": "11 11 11 1F 11 11 11",
    "I": "0E 04 04 04 04 04 0E",
    "J": "07 02 02 02 02 12 0C",
    "K": "11 12 14 18 14 12 11",
    "L": "10 10 10 10 10 10 1F",
    "M": "11 1B 15 15 11 11 11",
    "N": "11 11 19 15 13 11 11",
    "O": "0E 11 11 11 11 11 0E",
    "P": "1E 11 11 1E 10 10 10",
    "Q": "0E 11 11 11 15 12 0D",
    "R": "1E 11 11 1E 14 12 11",
    "S": "0F 10 10 0E 01 01 1E",
    "T": "1F 04 04 04 04 04 04",
    "U": "11 11 11 11 11 11 0E",
    "V": "11 11 11 11 11 0A 04",
    "W": "11 11 11 15 15 15 0A",
    "X": "11 11 0A 04 0A 11 11",
    "Y": "11 11 11 0A 04 04 04",
    "Z": "1F 01 02 04 08 10 1F",
    " ": "00 00 00 00 00 00 00",
    ".": "00 00 00 00 00 0C 0C",
    ",": "00 00 00 00 0C 04 08",
    "-": "00 00 00 1F 00 00 00",
    "(": "02 04 08 08 08 04 02",
    ")": "08 04 02 02 02 04 08",
    "/": "00 01 02 04 08 10 00",
    ":": "00 0C 0C 00 0C 0C 00",
    "%": "18 19 02 04 08 13 03",
    "+": "00 04 04 1F 04 04 00",
    ">": "08 04 02 01 02 04 08",
    "<": "02 04 08 10 08 04 02",
    "=": "00 00 1F 00 1F 00 00",
    "_": "00 00 00 00 00 00 1F",
    "[": "0E 08 08 08 08 08 0E",
    "]": "0E 02 02 02 02 02 0E",
    "?": "0E 11 01 02 04 00 04",
    ";": "00 0C 0C 00 0C 04 08",
}
GLYPH_W, GLYPH_H = 6, 8  # cell size in font pixels (5x7 glyph + spacing)


def png_bytes(width: int, height: int, rgb: bytes | bytearray) -> bytes:
    """Encode 8-bit RGB rows (no alpha, filter 0) as a PNG file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    stride = width * 3
    raw = b"".join(b"\x00" + bytes(rgb[y * stride : (y + 1) * stride]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


class Canvas:
    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> int:
        """Draw `text` with its top-left at (x, y); return the x after it."""
        for char in text.upper():
            rows = _FONT.get(char, _FONT["?"]).split()
            for dy, row in enumerate(rows):
                bits = int(row, 16)
                for dx in range(5):
                    if bits & (0x10 >> dx):
                        self.rect(x + dx * scale, y + dy * scale, scale, scale, color)
            x += GLYPH_W * scale
        return x

    def save(self, path: Path) -> None:
        path.write_bytes(png_bytes(self.width, self.height, self.pixels))


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * GLYPH_W * scale


@dataclass
class Bar:
    label: str
    segments: Sequence[float]  # stacked parts of the median, in legend order
    low: float | None = None  # whisker: min
    high: float | None = None  # whisker: max
    note: str = ""  # printed after the bar (e.g. "1.4X")


@dataclass
class Panel:
    title: str
    bars: list[Bar]
    legend: Sequence[str] = ()
    unit: str = "S"
    target: float | None = None  # a dashed vertical line
    marks: list[float] = field(default_factory=list)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= value."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * 0.9999)


def tick_count(full: float) -> int:
    """4 steps for 2, 4, 20.. (0.5, 5 apart); 5 for 1, 2.5, 5, 10.. (0.2, 0.5, 1, 2 apart)."""
    leading = full / 10 ** math.floor(math.log10(full))
    return 4 if round(leading, 3) in (2.0, 4.0) else 5


def bar_chart(panels: list[Panel], path: Path, width: int = 1100) -> None:
    scale, row_h, pad = 2, 24, 16
    label_w = max(text_width(bar.label) for panel in panels for bar in panel.bars) + 2 * pad
    note_w = max((text_width(bar.note) for panel in panels for bar in panel.bars), default=0)
    plot_w = width - label_w - note_w - 3 * pad
    height = pad + sum(row_h * (len(p.bars) + 3 + (1 if p.legend else 0)) + pad for p in panels)
    canvas = Canvas(width, height)
    y = pad
    for panel in panels:
        canvas.text(pad, y, panel.title, BLACK, scale)
        y += row_h
        if panel.legend:
            x = label_w
            for i, name in enumerate(panel.legend):
                canvas.rect(x, y + 2, 12, 12, PALETTE[i % len(PALETTE)])
                x = canvas.text(x + 18, y, name, GREY, scale) + 20
            y += row_h
        top = max([bar.high or sum(bar.segments) for bar in panel.bars] + [panel.target or 0])
        full = nice_max(top * 1.05)
        px = plot_w / full
        for bar in panel.bars:
            canvas.text(pad, y + 4, bar.label, BLACK, scale)
            x = label_w
            for i, value in enumerate(bar.segments):
                w = max(int(round(value * px)), 0)
                canvas.rect(x, y + 3, w, row_h - 6, PALETTE[i % len(PALETTE)])
                x += w
            if bar.low is not None and bar.high is not None:
                lo, hi = label_w + int(bar.low * px), label_w + int(bar.high * px)
                mid = y + row_h // 2
                canvas.rect(lo, mid - 1, max(hi - lo, 1), 2, BLACK)
                canvas.rect(lo, mid - 6, 2, 12, BLACK)
                canvas.rect(hi - 1, mid - 6, 2, 12, BLACK)
            if bar.note:
                canvas.text(label_w + plot_w + pad, y + 4, bar.note, GREY, scale)
            y += row_h
        if panel.target is not None:
            tx = label_w + int(panel.target * px)
            first = y - row_h * len(panel.bars)
            for yy in range(first, y, 8):
                canvas.rect(tx - 1, yy, 2, 4, PALETTE[3])
        canvas.rect(label_w, y, plot_w, 1, GREY)  # axis and ticks at round values
        steps = tick_count(full)
        for fraction in (i / steps for i in range(steps + 1)):
            tick_x = label_w + int(plot_w * fraction)
            canvas.rect(tick_x, y, 1, 5, GREY)
            value = full * fraction
            label = f"{value:g}" + (f" {panel.unit}" if fraction == 1 else "")
            canvas.text(
                tick_x - (text_width(label) // 2 if fraction < 1 else text_width(label)),
                y + 8,
                label,
                GREY,
                scale,
            )
        y += row_h * 2 + pad
    canvas.save(path)
