"""bench's PNG writer and report: valid images and a page rendered from results alone."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from bench import report
from bench.png import Bar, Canvas, Panel, bar_chart, nice_max, png_bytes
from bench.stats import summarize


def decode(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of a PNG made of IHDR, IDAT and IEND chunks."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_png_bytes_round_trips_pixels():
    canvas = Canvas(3, 2)
    canvas.rect(1, 1, 1, 1, (10, 20, 30))
    width, height, raw = decode(png_bytes(3, 2, canvas.pixels))
    assert (width, height) == (3, 2)
    second_row = raw[1 + 9 :]  # filter byte + row 0, then row 1's filter byte
    assert second_row[0] == 0 and second_row[4:7] == bytes((10, 20, 30))


def test_nice_max_rounds_up_to_a_readable_scale():
    assert [nice_max(v) for v in (0.7, 1.0, 1.3, 3.1, 7.2, 42)] == [1, 1, 2, 5, 10, 50]


def test_bar_chart_writes_a_png(tmp_path: Path):
    path = tmp_path / "chart.png"
    bar_chart(
        [
            Panel(
                "T",
                [Bar("dvc repro", [1.0], 0.9, 1.2, "1.00X"), Bar("a", [1.0, 2.0], 2.5, 3.5)],
                legend=["x", "y"],
                target=2.0,
            )
        ],
        path,
    )
    width, height, _ = decode(path.read_bytes())
    assert width == 1100 and height > 100


def local_results() -> dict:
    def s(*values: float) -> dict:
        return summarize(values)

    return {
        "repeats": 3,
        "noop": {
            "dvc": s(1.0, 1.1, 0.9),
            "a_cli": s(3.0, 3.2, 2.9),
            "b_cli": s(2.0, 2.1, 2.2),
            "a_inproc": s(1.2, 1.3, 1.1),
            "b_inproc": s(0.5, 0.6, 0.4),
        },
        "full": {
            "dvc": s(4.0, 4.1, 3.9),
            "a_cli": s(6.0, 6.2, 5.9),
            "b_cli": s(3.0, 3.1, 3.2),
            "a_inproc": s(4.2, 4.3, 4.1),
            "b_inproc": s(1.5, 1.6, 1.4),
        },
        "profile": {},
    }


def test_report_renders_from_results_and_says_what_was_not_measured(tmp_path: Path):
    (tmp_path / "local.json").write_text(__import__("json").dumps(local_results()))
    (tmp_path / "image-error.json").write_text('{"error": "RuntimeError: no docker"}')
    markdown, png = tmp_path / "benchmarks.md", tmp_path / "benchmarks.png"
    report.write(tmp_path, markdown, png)
    text = markdown.read_text()
    assert "| bare `dvc repro` | 1.00 s [0.90–1.10] | 1.00x |" in text
    assert "3.00x as a new process" in text and "**missed**" in text  # A: 3.0 / 1.0 > 1.5
    assert "Not measured: the section failed** (`RuntimeError: no docker`)" in text
    assert "## 5. Scale\n\n**Not measured in this run.**" in text
    assert png.read_bytes().startswith(b"\x89PNG")
