"""Compose images of handwritten numbers from real single digits, for developing and measuring `lenet read`.

    python bench/reading/compose_numbers.py /tmp/numbers --count 300 --seed 1 \\
        --data-dir ../shared/data/mnist --handwriting ../shared/data/handwriting

writes /tmp/numbers/<setting>/ for each setting: grey JPEGs 40-60 pixels tall and a labels.csv
(`file,label`, the label the digits only), the form `lenet evaluate --numbers DIR` reads.

The digits are MNIST's test-set digits (written by writers disjoint from its training set's) and, for a
share of the numbers, the photographed digits of ../shared/data/handwriting (a few people, European
styles). Each number takes 1-7 digits (mostly 4-5, as amounts), scales them to one height with some
jitter, places them with the setting's spacing (gaps, touching, overlapping), shears the whole field
(slant) and adds what real fields carry:

    spaced      clear gaps, plain paper
    touching    digits that touch or overlap their neighbours
    separators  `.` and `,` between thousands or before cents, a trailing dash
    lines       an underline (sometimes touching the digits) and the edges of a printed box
    textured    security-printed or textured paper behind the digits
    cheque      all of the above mixed, as on the amount box of a cheque

Several settings, none tuned for: the real sets that judge the reader are held out. Output goes where you
say (never into the repository); the same seed writes the same files.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Setting:
    gap: tuple[float, float]  # space between neighbours, in digit heights (negative: overlapping)
    separators: float = 0.0  # chance of `.`/`,` separators (numbers of 3 digits or more)
    dash: float = 0.0  # chance of a trailing dash
    underline: float = 0.0
    box: float = 0.0  # chance of printed box edges
    texture: float = 0.0  # chance of a printed or textured background
    slant: float = 0.12  # largest shear, either way


SETTINGS = {
    "spaced": Setting(gap=(0.15, 0.5)),
    "touching": Setting(gap=(-0.18, 0.02)),
    "separators": Setting(gap=(0.08, 0.4), separators=0.9, dash=0.4),
    "lines": Setting(gap=(0.08, 0.4), underline=0.8, box=0.7),
    "textured": Setting(gap=(0.05, 0.4), texture=1.0),
    "cheque": Setting(
        gap=(-0.12, 0.4), separators=0.6, dash=0.3, underline=0.4, box=0.4, texture=0.7, slant=0.25
    ),
}
LENGTHS = np.arange(1, 8)
LENGTH_WEIGHTS = np.array([0.04, 0.08, 0.14, 0.26, 0.26, 0.12, 0.10])


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def crop_ink(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero((ink > 0.15).any(1)), np.flatnonzero((ink > 0.15).any(0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def load_digits(data_dir: Path, handwriting: Path | None) -> dict[str, list[list[np.ndarray]]]:
    """{"mnist": [crops of 0, crops of 1, ...], "handwriting": [...]}: ink in [0, 1], bright, cropped."""
    images = read_idx(data_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / "t10k-labels-idx1-ubyte.gz")
    sources = {
        "mnist": [[crop_ink(images[i] / 255.0) for i in np.flatnonzero(labels == d)] for d in range(10)]
    }
    if handwriting is not None and handwriting.is_dir():
        photos = []
        for digit in range(10):
            crops = []
            for path in sorted((handwriting / str(digit)).glob("*.png")):
                grey = np.asarray(Image.open(path).convert("L"), np.float32) / 255
                ink = np.clip((grey.max() - grey) / max(grey.max() - grey.min(), 1e-3), 0, 1)
                crops.append(crop_ink(np.where(ink > 0.25, ink, 0)))
            photos.append(crops)
        sources["handwriting"] = photos
    return sources


def resize(ink: np.ndarray, height: int, width: int) -> np.ndarray:
    image = Image.fromarray(np.uint8(ink * 255)).resize((max(1, width), max(1, height)), Image.BILINEAR)
    return np.asarray(image, np.float32) / 255


def compose(rng: np.random.Generator, setting: Setting, sources: dict) -> tuple[Image.Image, str]:
    count = int(rng.choice(LENGTHS, p=LENGTH_WEIGHTS))
    label = "".join(str(d) for d in rng.integers(0, 10, count))
    if label[0] == "0" and count > 1:
        label = str(rng.integers(1, 10)) + label[1:]
    source = "handwriting" if "handwriting" in sources and rng.random() < 0.2 else "mnist"
    height = int(rng.integers(40, 61))
    digit_h = height * rng.uniform(0.55, 0.78)
    stroke = max(1, round(digit_h * rng.uniform(0.06, 0.1)))

    glyphs = []  # (ink, x offset of its left edge from the previous right edge, y jitter)
    for index, char in enumerate(label):
        crops = sources[source][int(char)]
        crop = crops[rng.integers(len(crops))]
        h = digit_h * rng.uniform(0.9, 1.05)
        w = crop.shape[1] / crop.shape[0] * h
        glyphs.append([resize(crop, round(h), round(w)), digit_h * rng.uniform(*setting.gap), 0])
        glyphs[-1][2] = digit_h * rng.uniform(-0.05, 0.05)
        if index < count - 1 and count >= 3 and rng.random() < setting.separators:
            from_right = count - 1 - index
            if from_right % 3 == 0 or (from_right == 2 and rng.random() < 0.3):
                glyphs.append(["sep", digit_h * rng.uniform(0.05, 0.2), 0])

    margin = int(digit_h * rng.uniform(0.2, 0.6))
    dash = rng.random() < setting.dash
    width = (
        int(
            margin * 2
            + sum(g[0].shape[1] if not isinstance(g[0], str) else digit_h * 0.3 for g in glyphs)
            + sum(max(g[1], -0.5 * digit_h) for g in glyphs)
            + (digit_h * 1.3 if dash else 0)
        )
        + 4
    )
    ink = np.zeros((height, max(width, height)), np.float32)
    top = (height - digit_h) / 2 + digit_h * rng.uniform(-0.08, 0.08)
    baseline = top + digit_h
    x = float(margin)
    separator_layer = Image.new("L", (ink.shape[1], height), 0)
    pen = ImageDraw.Draw(separator_layer)
    for index, (glyph, gap, jitter) in enumerate(glyphs):
        if index:
            x += gap
        if isinstance(glyph, str):
            radius = max(1.2, digit_h * rng.uniform(0.05, 0.09))
            cx, cy = x + radius, baseline - radius + digit_h * rng.uniform(-0.03, 0.05)
            pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
            if rng.random() < 0.5:  # a comma's tail
                pen.line(
                    [(cx + radius * 0.5, cy), (cx - radius * 1.2, cy + radius * 3.2)],
                    fill=255,
                    width=max(1, round(radius * 0.9)),
                )
            x += radius * 2
            continue
        left, row = int(round(x)), int(round(top + jitter))
        h, w = glyph.shape
        row = min(max(row, 0), height - h)
        region = ink[row : row + h, left : left + w]
        np.maximum(region, glyph[: region.shape[0], : region.shape[1]], out=region)
        x += w
    if dash:
        start = x + digit_h * rng.uniform(0.1, 0.4)
        length = digit_h * rng.uniform(0.4, 1.0)
        y = top + digit_h * rng.uniform(0.4, 0.6)
        pen.line([(start, y), (start + length, y + rng.uniform(-2, 2))], fill=255, width=stroke)
    ink = np.maximum(ink, np.asarray(separator_layer, np.float32) / 255)

    slant = rng.uniform(-setting.slant, setting.slant)
    sheared = Image.fromarray(np.uint8(ink * 255)).transform(
        ink.shape[::-1], Image.AFFINE, (1, slant, -slant * height / 2, 0, 1, 0), Image.BILINEAR
    )
    ink = np.asarray(sheared, np.float32) / 255

    lines = Image.new("L", (ink.shape[1], height), 0)
    pen = ImageDraw.Draw(lines)
    if rng.random() < setting.underline:
        y = baseline + digit_h * rng.uniform(-0.02, 0.15)
        pen.line(
            [(margin * rng.uniform(0.2, 1), y), (x + margin * rng.uniform(0, 1), y + rng.uniform(-3, 3))],
            fill=int(rng.integers(180, 256)),
            width=int(rng.integers(1, 4)),
        )
    if rng.random() < setting.box:
        edge = int(rng.integers(1, 3))
        inset = int(rng.integers(0, 4))
        w, h = ink.shape[1] - 1, height - 1
        sides = [
            ((inset, inset), (w - inset, inset)),
            ((inset, h - inset), (w - inset, h - inset)),
            ((inset, inset), (inset, h - inset)),
            ((w - inset, inset), (w - inset, h - inset)),
        ]
        for side in sides:
            if rng.random() < 0.7:
                pen.line(side, fill=int(rng.integers(150, 256)), width=edge)
    printed = np.asarray(lines, np.float32) / 255

    paper = rng.uniform(215, 250)
    ink_level = rng.uniform(15, 90)
    background = np.full(ink.shape, paper, np.float32)
    if rng.random() < setting.texture:
        background = paper - texture(rng, ink.shape) * rng.uniform(15, 45)
    grey = background * (1 - ink) + ink_level * ink
    grey = grey * (1 - printed) + rng.uniform(40, 120) * printed
    grey += rng.normal(0, rng.uniform(2, 6), grey.shape)
    image = Image.fromarray(np.uint8(np.clip(grey, 0, 255)), "L")
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    return image, label


def texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A printed or textured background in [0, 1]: fine guilloche waves, hatching or blotchy noise."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # guilloche: interfering waves of fine lines
        phase = rows + 4 * np.sin(cols / rng.uniform(6, 15)) + 3 * np.sin(cols / rng.uniform(20, 40))
        return (np.sin(phase * 2 * np.pi / rng.uniform(3, 6)) > 0.6).astype(np.float32)
    if kind == 1:  # diagonal hatching
        return (np.sin((rows * rng.uniform(0.5, 1.5) + cols) * 2 * np.pi / rng.uniform(4, 8)) > 0.7).astype(
            np.float32
        )
    noise = rng.random((shape[0] // 4 + 2, shape[1] // 4 + 2)).astype(np.float32)
    blotches = np.asarray(
        Image.fromarray(np.uint8(noise * 255)).resize(shape[::-1], Image.BICUBIC), np.float32
    )
    return blotches / 255


def write_set(folder: Path, setting: Setting, count: int, rng: np.random.Generator, sources: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        image, label = compose(rng, setting, sources)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(40, 91)))
        name = f"{index:05d}.jpg"
        (folder / name).write_bytes(buffer.getvalue())
        rows.append((name, label))
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write <setting>/ folders into (not the repository)")
    parser.add_argument("--count", type=int, default=300, help="numbers per setting")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--handwriting", type=Path, default=Path("../shared/data/handwriting"))
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help="comma-separated, of: " + ", ".join(SETTINGS)
    )
    args = parser.parse_args()
    sources = load_digits(args.data_dir, args.handwriting)
    for offset, name in enumerate(args.settings.split(",")):
        rng = np.random.default_rng([args.seed, offset])
        write_set(args.out / name, SETTINGS[name], args.count, rng, sources)
        print(f"{args.out / name}: {args.count} numbers")


if __name__ == "__main__":
    main()
