"""Contact sheets of `lenet train --styles`' data, to check by eye, and the time the pool takes.

    python bench/training/style_sheets.py --data-dir ../shared/data/mnist --out docs

- styles_fonts.png: one row per font file found, the digits 0-9 in MNIST form (undistorted);
- styles_edits.png: for each edited class, pairs of (MNIST digit, the same digit edited);
- styles_pool.png: a sample of the pool, one block per source (fonts, edits, scans), rows by label.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from lenet_cli.data.datasets import load_split
from lenet_cli.images.preprocess import normalize_digit
from lenet_cli.training.style_data import SOURCES, WORK, as_canvas, make_style_pool
from lenet_cli.training.style_edits import EDITED_CLASSES, edit_digit
from lenet_cli.training.style_fonts import find_fonts

ZOOM = 2


def tile(rows: list[list[np.ndarray]], labels: list[str], gap: int = 2) -> Image.Image:
    """Rows of 28x28 uint8 digits, each row with a label on the left."""
    cell = 28 * ZOOM + gap
    width = max(len(row) for row in rows)
    margin = 170
    sheet = Image.new("L", (margin + width * cell, len(rows) * cell), 90)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        draw.text((4, r * cell + cell // 3), label[:26], fill=255, font=font)
        for c, digit in enumerate(row):
            picture = Image.fromarray(digit).resize((28 * ZOOM, 28 * ZOOM), Image.NEAREST)
            sheet.paste(picture, (margin + c * cell, r * cell))
    return sheet


def edits_keep_labels(
    images: np.ndarray, targets: np.ndarray, model_path: str, rng, count: int = 500
) -> None:
    """How often a model that never saw the edits still reads each edited digit as its label."""
    from lenet_cli.data.datasets import as_input
    from lenet_cli.formats.checkpoint import load_model

    model, _ = load_model(model_path)
    model.eval()
    for label in EDITED_CLASSES:
        picks = rng.choice(np.flatnonzero(targets == label), count, replace=False)
        edited = [edit_digit(as_canvas(images[i]), label, rng) for i in picks]
        kept = [normalize_digit(e, invert="no") for e in edited if e is not None]
        with torch.no_grad():
            before = model(as_input(torch.from_numpy(images[picks]))).argmax(1)
            after = model(as_input(torch.from_numpy(np.stack(kept)))).argmax(1)
        print(
            f"edit of {label}: {model_path} reads {float((after == label).float().mean()):.1%} of "
            f"{len(kept)} edited digits as {label} (the same digits unedited: "
            f"{float((before == label).float().mean()):.1%}); others read: "
            f"{dict(zip(*np.unique(after[after != label].numpy(), return_counts=True), strict=True))}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--pool", type=int, default=3000, help="pool size to time and sample")
    parser.add_argument(
        "--check-model",
        required=True,
        help="a model trained without the edits, to check they keep their labels (the model "
        "shipped before them: git show dbb2664:lenet_cli/pretrained/lenet5-mnist.pt)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = find_fonts()
    if found.missing_line():
        print(found.missing_line())
    rows, labels = [], []
    for path in found.paths:
        font = ImageFont.truetype(str(path), 40)
        row = []
        for digit in range(10):
            canvas = Image.new("L", (WORK, WORK), 0)
            ImageDraw.Draw(canvas).text((WORK / 2, WORK / 2), str(digit), fill=255, font=font, anchor="mm")
            row.append(normalize_digit(np.asarray(canvas, np.float32) / 255, invert="no"))
        rows.append(row)
        labels.append(path.stem)
    tile(rows, labels).save(args.out / "styles_fonts.png")

    train = load_split("mnist", args.data_dir, "train")
    images, targets = train.images.numpy(), train.labels.numpy()
    rng = np.random.default_rng(7)
    rows, labels = [], []
    for label in EDITED_CLASSES:
        row = []
        for index in rng.choice(np.flatnonzero(targets == label), 8, replace=False):
            edited = edit_digit(as_canvas(images[index]), label, rng)
            row += [
                images[index],
                normalize_digit(edited, invert="no") if edited is not None else images[index] * 0,
            ]
        rows.append(row)
        labels.append(f"{label}: original, edited")
    tile(rows, labels).save(args.out / "styles_edits.png")
    edits_keep_labels(images, targets, args.check_model, rng)

    started = time.perf_counter()
    pool = make_style_pool(images, targets, found.paths, args.pool, seed=0)
    seconds = time.perf_counter() - started
    print(
        f"pool of {args.pool:,}: {seconds:.1f}s ({1000 * seconds / args.pool:.2f} ms a digit), "
        f"{len(found.paths)} font files"
    )
    rows, labels = [], []
    for source_index, source in enumerate(SOURCES):
        for label in range(10):
            chosen = np.flatnonzero((pool.sources == source_index) & (pool.labels == label))[:14]
            if len(chosen):
                rows.append(list(pool.images_u8[chosen]))
                labels.append(f"{source}: {label}")
    tile(rows, labels).save(args.out / "styles_pool.png")
    print(f"wrote {args.out}/styles_fonts.png, styles_edits.png, styles_pool.png")


if __name__ == "__main__":
    main()
