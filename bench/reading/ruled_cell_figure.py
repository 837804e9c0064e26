"""The ruled-cell picture in docs/reading-numbers.md: numbers written into register-like cells built by hand
(tests/test_field.py's `ruled_cell`: faint, broken, slanted rules, one through the digits, a vertical rule,
a black scan band, a neighbour's stroke at the edge, speckle), as `lenet read` reads them: the cell, the
ink it kept after the clean-up (bands, rules, edge marks and specks gone) with the digits' boxes, and the
28x28 input the network saw for each digit.

    python bench/reading/ruled_cell_figure.py docs/reading-ruled-cell.png
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from test_field import ruled_cell  # noqa: E402

from lenet_cli.formats.shipped import READER  # noqa: E402
from lenet_cli.inference.fast_predict import load_predict_model  # noqa: E402
from lenet_cli.inference.numbers import read_source  # noqa: E402

CELLS = [("47", (70, 45)), ("305", (42, 75))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    model, _ = load_predict_model(READER)
    figure = Figure(figsize=(10, 3.4 * len(CELLS)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for row, (text, at) in zip(figure.subfigures(len(CELLS), 1), CELLS, strict=True):
        image = ruled_cell(text, at=at)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        reading = read_source(model, buffer.getvalue(), "auto", None)
        kept = reading.segmentation.labels > 0
        cell_axis, kept_axis, *digit_axes = row.subplots(1, 2 + len(reading.digits), squeeze=False)[0]
        cell_axis.imshow(np.asarray(image), cmap="gray", vmin=0, vmax=255)
        cell_axis.set_title(f"written {text}", fontsize=10)
        kept_axis.imshow(np.where(kept, reading.field, 0), cmap="gray", vmin=0, vmax=255)
        kept_axis.set_title(f"read {reading.number} ({reading.confidence:.0%})", fontsize=10)
        for digit in reading.digits:
            x, y, w, h = digit.box
            kept_axis.add_patch(
                Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="tab:red", linewidth=1.2)
            )
        for axis, digit in zip(digit_axes, reading.digits, strict=True):
            axis.imshow(digit.seen, cmap="gray", vmin=0, vmax=255)
            axis.set_title(f"{digit.label}  {digit.confidence:.0%}", fontsize=9)
        for axis in (cell_axis, kept_axis, *digit_axes):
            axis.axis("off")
    figure.savefig(args.out, format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
