"""The picture in docs/reading-numbers.md: composed numbers as `lenet read` reads them, each field with the
boxes of the digits it found and, beneath, the 28x28 input the network saw for each.

    python bench/reading/reading_figure.py docs/reading-numbers.png --seed 11
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from compose_numbers import SETTINGS, compose, load_digits
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import READER
from lenet_cli.inference.numbers import read_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--handwriting", type=Path, default=Path("../shared/data/handwriting"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_any_model(READER, "cpu")
    sources = load_digits(args.data_dir, args.handwriting)
    rng = np.random.default_rng(args.seed)
    settings = ["cheque", "touching", "lines"]
    figure = Figure(figsize=(11, 2.6 * len(settings)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    rows = figure.subfigures(len(settings), 1)
    for row, name in zip(rows, settings, strict=True):
        while True:  # a number of 4 to 6 digits
            image, label = compose(rng, SETTINGS[name], sources)
            if 4 <= len(label) <= 6:
                break
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=60)
        reading = read_source(model, buffer.getvalue(), "auto", None)
        top, bottom = row.subfigures(2, 1, height_ratios=[1.6, 1])
        axis = top.subplots()
        axis.imshow(np.asarray(image), cmap="gray", vmin=0, vmax=255)
        for digit in reading.digits:
            x, y, w, h = digit.box
            axis.add_patch(
                Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="tab:red", linewidth=1.2)
            )
        verdict = "right" if reading.number == label else f"wrong: written {label}"
        axis.set_title(f"{name}: read {reading.number} ({reading.confidence:.0%}) — {verdict}", fontsize=10)
        axis.axis("off")
        inputs = bottom.subplots(1, max(len(reading.digits), 1), squeeze=False)[0]
        for small, digit in zip(inputs, reading.digits, strict=False):
            small.imshow(digit.seen, cmap="gray", vmin=0, vmax=255)
            small.set_title(f"{digit.label}  {digit.confidence:.0%}", fontsize=9)
            small.axis("off")
    figure.savefig(args.out, format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
