"""The style pool of `lenet train --styles`: digits in the hands MNIST lacks, made at train time.

Three sources, each put into MNIST form by predict's own preprocessing (`normalize_digit`), so the
network learns them as it will later see them:
- fonts: digits written in handwriting fonts (style_fonts.py), slanted, stretched, elastically
  distorted at two scales (the shape, and the pen's wobble), with varied stroke widths;
- edits: MNIST training digits given the strokes other hands add: a flag (sometimes a foot) on a 1,
  a bar across a 7, a loop where a 2 turns, a tail on a 9 that curls round to the left;
- scans: MNIST training digits (and a share of the two above) through scan- and photo-like damage:
  blur, thickening, uneven ink, broken strokes, paper tone, shading and noise.
Everything is drawn from one numpy generator seeded by the run's seed, so the pool is the same for the
same (seed, training images, fonts); torch is used only to warp whole batches at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from lenet_cli.core.errors import ImageError
from lenet_cli.images.preprocess import normalize_digit
from lenet_cli.images.segment import label_components

WORK = 48  # side of the canvas digits are drawn and damaged on, before preprocessing to 28x28
# The edits are the styles a model that never saw them misreads, as it misreads real flagged 1s and curled
# 9s: 1s read as 7 or 9, 9s as 3 (bench/training/style_sheets.py draws and checks them; figures in
# docs/performance.md). An open top on 4 is not among them: most MNIST 4s are open already. Each class's
# share of the edits, by how often its style is missed:
EDIT_WEIGHTS = {1: 0.4, 7: 0.2, 9: 0.25, 2: 0.15}
EDITED_CLASSES = tuple(EDIT_WEIGHTS)
SOURCES = ("fonts", "edits", "scans")
SHARES = {"fonts": 0.4, "edits": 0.35, "scans": 0.25}  # of the pool
DAMAGED_SHARE = 0.35  # of font digits and edited digits that are also damaged like a scan


@dataclass
class StylePool:
    images_u8: np.ndarray  # (N, 28, 28) uint8, MNIST form
    labels: np.ndarray  # (N,) int64
    sources: np.ndarray  # (N,) index into SOURCES


def make_style_pool(
    train_u8: np.ndarray, train_labels: np.ndarray, font_paths: Sequence[Path], size: int, seed: int
) -> StylePool:
    """`size` style digits from the training digits and the fonts (no fonts: edits and scans only)."""
    rng = np.random.default_rng([seed, 25])
    counts = {name: round(size * share) for name, share in SHARES.items()}
    if not font_paths:
        counts = {"fonts": 0, "edits": size // 2, "scans": size - size // 2}
    counts["scans"] = size - counts["fonts"] - counts["edits"]
    images, labels, sources = [], [], []
    for source, count in counts.items():
        if count == 0:
            continue
        if source == "fonts":
            made, made_labels = font_digits(font_paths, count, rng)
        elif source == "edits":
            made, made_labels = edited_digits(train_u8, train_labels, count, rng)
        else:
            picks = rng.choice(len(train_u8), count, replace=False)
            made, made_labels = [as_canvas(train_u8[i]) for i in picks], train_labels[picks].astype(np.int64)
        damaged = np.ones(count, bool) if source == "scans" else rng.random(count) < DAMAGED_SHARE
        images += [to_mnist_form(image, hurt, rng) for image, hurt in zip(made, damaged, strict=True)]
        labels.append(np.asarray(made_labels, np.int64))
        sources.append(np.full(count, SOURCES.index(source)))
    return StylePool(np.stack(images), np.concatenate(labels), np.concatenate(sources))


# Fonts ---------------------------------------------------------------------------------------------


def font_digits(font_paths: Sequence[Path], count: int, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """`count` digits (white on black, WORK x WORK floats) in random fonts, sizes, strokes and shapes."""
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    fonts: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}
    glyphs = []
    for label in labels:
        path = font_paths[int(rng.integers(len(font_paths)))]
        size = int(WORK * rng.uniform(0.56, 0.72))
        key = (path, size)
        if key not in fonts:
            fonts[key] = ImageFont.truetype(str(path), size)
        canvas = Image.new("L", (WORK, WORK), 0)
        stroke = int(rng.choice([0, 0, 0, 1, 1, 2]))
        ImageDraw.Draw(canvas).text(
            (WORK / 2, WORK / 2),
            str(label),
            fill=255,
            font=fonts[key],
            anchor="mm",
            stroke_width=stroke,
            stroke_fill=255,
        )
        glyphs.append(np.asarray(canvas, np.float32) / 255)
    warped = warp(np.stack(glyphs), rng, slant=0.35, rotate_deg=10, elastic=0.05, wobble=0.012)
    return list(warped), labels.astype(np.int64)


def warp(
    images: np.ndarray,
    rng: np.random.Generator,
    slant: float,
    rotate_deg: float,
    elastic: float,
    wobble: float,
) -> np.ndarray:
    """Each image sheared, rotated, stretched and elastically distorted: a smooth field on a 4x4 grid
    (the shape) plus a finer one on 10x10 (the pen's wobble), amplitudes in units of the half-width."""
    count = len(images)
    shear = rng.uniform(-slant, slant, count)
    angle = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg, count))
    stretch_x = rng.uniform(0.8, 1.15, count)
    cos, sin = np.cos(angle), np.sin(angle)
    theta = np.zeros((count, 2, 3), np.float32)  # output -> input coordinates, as affine_grid takes
    theta[:, 0, 0], theta[:, 0, 1] = cos / stretch_x, (-sin + shear) / stretch_x
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    inputs = torch.from_numpy(images)[:, None]
    grid = F.affine_grid(torch.from_numpy(theta), list(inputs.shape), align_corners=False)
    for cells, amplitude in ((4, elastic), (10, wobble)):
        field = torch.from_numpy(rng.normal(0, amplitude, (count, 2, cells, cells)).astype(np.float32))
        grid = grid + F.interpolate(field, size=images.shape[1:], mode="bilinear").permute(0, 2, 3, 1)
    return F.grid_sample(inputs, grid, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()


# Edits of MNIST digits -----------------------------------------------------------------------------


def edited_digits(
    train_u8: np.ndarray, train_labels: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[list, np.ndarray]:
    """`count` training digits of EDITED_CLASSES (in the shares of EDIT_WEIGHTS) with their edit drawn in."""
    made, labels = [], []
    by_class = {label: np.flatnonzero(train_labels == label) for label in EDITED_CLASSES}
    weights = np.array(list(EDIT_WEIGHTS.values()))
    while len(made) < count:
        label = EDITED_CLASSES[int(rng.choice(len(weights), p=weights / weights.sum()))]
        index = int(rng.choice(by_class[label]))
        edited = edit_digit(as_canvas(train_u8[index]), label, rng)
        if edited is not None:
            made.append(edited)
            labels.append(label)
    return made, np.asarray(labels, np.int64)


def as_canvas(image_u8: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit as a WORK x WORK float image (white on black), bilinear."""
    return np.asarray(Image.fromarray(image_u8).resize((WORK, WORK), Image.BILINEAR), np.float32) / 255


@dataclass(frozen=True)
class _Ink:
    """Where a digit's ink is, and the pen it was written with, for drawing an edit onto it."""

    mask: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    top: int
    bottom: int
    height: int
    pen: int

    def x_at(self, row: int) -> float | None:
        xs = np.flatnonzero(self.mask[row])
        return float(xs.mean()) if len(xs) else None


def edit_digit(image: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray | None:
    """The edit of `label`'s class drawn onto `image`; None where the digit's shape does not allow it."""
    mask = image > 0.35
    draw_edit = _EDITS.get(label)
    if mask.sum() < 20 or draw_edit is None:
        return None
    rows, cols = np.nonzero(mask)
    top, bottom = int(rows.min()), int(rows.max())
    ink = _Ink(mask, rows, cols, top, bottom, bottom - top + 1, max(2, round(stroke_width(mask))))
    picture = Image.fromarray(np.round(image * 255).astype(np.uint8))
    if not draw_edit(ImageDraw.Draw(picture), ink, rng):
        return None
    return _unless_it_closes_a_loop(np.asarray(picture, np.float32) / 255, mask, label)


def _flag_a_one(draw: ImageDraw.ImageDraw, ink: _Ink, rng: np.random.Generator) -> bool:
    """A flag from the top down to the left, and sometimes a base."""
    top_x, bottom_x = ink.x_at(ink.top), ink.x_at(ink.bottom)
    if top_x is None or bottom_x is None:
        return False
    length = ink.height * rng.uniform(0.3, 0.55)
    drop = math.radians(rng.uniform(30, 65))  # below the horizontal, towards the left
    flag_end = (top_x - length * math.cos(drop), ink.top + length * math.sin(drop))
    draw.line([(top_x, ink.top), flag_end], fill=255, width=ink.pen, joint="curve")
    if rng.random() < 0.4:
        half = ink.height * rng.uniform(0.18, 0.4)
        draw.line([(bottom_x - half, ink.bottom), (bottom_x + half, ink.bottom)], fill=255, width=ink.pen)
    return True


def _cross_a_seven(draw: ImageDraw.ImageDraw, ink: _Ink, rng: np.random.Generator) -> bool:
    """A bar across the stem, a little below the middle."""
    row = ink.top + round(ink.height * rng.uniform(0.45, 0.6))
    middle = ink.x_at(row)
    if middle is None:
        return False
    half = ink.height * rng.uniform(0.16, 0.24)
    draw.line([(middle - half, row), (middle + half, row)], fill=255, width=ink.pen)
    return True


def _loop_a_two(draw: ImageDraw.ImageDraw, ink: _Ink, rng: np.random.Generator) -> bool:
    """A loop drawn from the corner up and round, as a pen makes it before the base."""
    low = ink.rows >= ink.top + 0.7 * ink.height
    corner = int(np.argmin(ink.cols[low]))
    cx, cy = float(ink.cols[low][corner]), float(ink.rows[low][corner])
    radius = ink.height * rng.uniform(0.12, 0.17)
    centre = (cx + radius * 1.0, cy - radius * 1.0)
    loop = [
        (centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a))
        for a in np.linspace(math.radians(135), math.radians(135 + 360), 28)
    ]
    draw.line(loop, fill=255, width=max(2, ink.pen - 1), joint="curve")
    return True


def _curl_a_nine(draw: ImageDraw.ImageDraw, ink: _Ink, rng: np.random.Generator) -> bool:
    """The tail curls down and round to the left."""
    bottom_x = ink.x_at(ink.bottom)
    if bottom_x is None:
        return False
    radius = ink.height * rng.uniform(0.18, 0.26)
    centre = (bottom_x - radius, ink.bottom - radius * 0.6)
    sweep = np.linspace(0, math.radians(rng.uniform(150, 200)), 20)
    curl = [(centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a)) for a in sweep]
    draw.line(curl, fill=255, width=ink.pen, joint="curve")
    return True


_EDITS = {1: _flag_a_one, 7: _cross_a_seven, 2: _loop_a_two, 9: _curl_a_nine}


def _unless_it_closes_a_loop(edited: np.ndarray, mask: np.ndarray, label: int) -> np.ndarray | None:
    """None where the edit closed a loop the digit did not have (a barred 7 that looks like a 9 is not a 7
    any more); a 2's loop is the edit itself."""
    return None if label != 2 and holes(edited > 0.35) > holes(mask) else edited


def holes(mask: np.ndarray) -> int:
    """How many regions of paper the ink encloses (the loops of a 0, 6, 8 or 9)."""
    _, count = label_components(np.pad(~mask, 1, constant_values=True))
    return count - 1  # all but the paper round the digit, which the padding joins into one


def stroke_width(mask: np.ndarray) -> float:
    """2 * area / boundary of an ink mask: the width of its strokes (exact for long ones)."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return 2 * float(mask.sum()) / max(float((mask & ~inner).sum()), 1.0)


# Scan- and photo-like damage, and MNIST form ------------------------------------------------------


def to_mnist_form(image: np.ndarray, damaged: bool, rng: np.random.Generator) -> np.ndarray:
    """A WORK x WORK white-on-black image through predict's preprocessing (after damage, if asked)."""
    try:
        if not damaged:
            return normalize_digit(image, invert="no")
        return normalize_digit(damage(image, rng), invert="auto")
    except ImageError:  # damage wiped the digit out: keep it undamaged
        return normalize_digit(image, invert="no")


def damage(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` (white ink on black) as a scan or photo of it: dark ink on paper, float32 in [0, 1]."""
    ink = Image.fromarray(np.round(image * 255).astype(np.uint8))
    if rng.random() < 0.3:
        thicker = ink.filter(ImageFilter.MaxFilter(3 if rng.random() < 0.7 else 5))  # a thicker pen ...
        if holes(np.asarray(thicker) > 90) <= holes(np.asarray(ink) > 90):
            ink = thicker  # ... unless it closes a loop (a hooked 7 would become a 9)
    ink_level = np.asarray(ink, np.float32) / 255
    if rng.random() < 0.4:  # broken strokes: a few gaps where the pen skipped
        ys, xs = np.nonzero(ink_level > 0.5)
        if len(ys):
            grid_y, grid_x = np.mgrid[0:WORK, 0:WORK]
            for pick in rng.choice(len(ys), int(rng.integers(1, 4))):
                radius = rng.uniform(1.2, 2.3)
                ink_level[(grid_y - ys[pick]) ** 2 + (grid_x - xs[pick]) ** 2 < radius**2] *= 0.1
    if rng.random() < 0.5:  # uneven ink: pressure and a drying pen
        ink_level *= smooth_field(rng, 0.35, 1.0)
    paper = rng.uniform(0.7, 1.0)
    darkness = rng.uniform(0.45, 0.95)
    grey = paper - darkness * ink_level
    if rng.random() < 0.6:  # shading across the sheet
        ys, xs = np.mgrid[0:WORK, 0:WORK] / WORK
        angle = rng.uniform(0, 2 * math.pi)
        grey = grey - rng.uniform(0.05, 0.3) * (math.cos(angle) * xs + math.sin(angle) * ys)
    picture = Image.fromarray(np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.5:  # out of focus
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.6)))
    grey = np.asarray(picture, np.float32) / 255 + rng.normal(0, rng.uniform(0.0, 0.05), (WORK, WORK))
    return np.clip(grey, 0, 1).astype(np.float32)


def smooth_field(rng: np.random.Generator, low: float, high: float, cells: int = 4) -> np.ndarray:
    """A smooth random WORK x WORK field between `low` and `high`."""
    coarse = Image.fromarray(rng.uniform(low, high, (cells, cells)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((WORK, WORK), Image.BICUBIC), np.float32).clip(low, high)
