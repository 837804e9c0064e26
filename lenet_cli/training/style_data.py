"""The style pool of `lenet train --styles`: digits in the hands MNIST lacks, made at train time.

Four sources, each put into MNIST form by predict's own preprocessing (`normalize_digit`), so the
network learns them as it will later see them:
- fonts: digits written in handwriting fonts (style_fonts.py), slanted, stretched, elastically
  distorted at two scales (the shape, and the pen's wobble), with varied stroke widths;
- edits: MNIST training digits with the strokes other hands add or leave out (style_edits.py);
- warped: MNIST training digits in other hands: another pen (thicker or thinner), slanted, turned,
  stretched and elastically distorted like the font digits;
- scans: MNIST training digits (and a share of the others) through scan- and photo-like damage:
  blur, thickening, uneven ink, broken strokes, paper tone, shading and noise.
A share of every source is also made small, as a digit scanned 11-17 pixels tall is, and enlarged
again by the preprocessing. Everything is drawn from one numpy generator seeded by the run's seed, so
the pool is the same for the same (seed, training images, fonts); torch is used only to warp whole
batches at once.
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
from lenet_cli.training.style_edits import EDIT_WEIGHTS, EDITED_CLASSES, edit_digit, holes

WORK = 48  # side of the canvas digits are drawn and damaged on, before preprocessing to 28x28
SOURCES = ("fonts", "edits", "scans", "warped")
SHARES = {"fonts": 0.2, "edits": 0.2, "warped": 0.4, "scans": 0.2}  # of the pool, made in this order
DAMAGED_SHARE = 0.35  # of font, edited and warped digits that are also damaged like a scan
SMALL_SHARE = 0.3  # of every source's digits that are scanned small (`shrink`)


@dataclass
class StylePool:
    images_u8: np.ndarray  # (N, 28, 28) uint8, MNIST form
    labels: np.ndarray  # (N,) int64
    sources: np.ndarray  # (N,) index into SOURCES


def make_style_pool(
    train_u8: np.ndarray, train_labels: np.ndarray, font_paths: Sequence[Path], size: int, seed: int
) -> StylePool:
    """`size` style digits from the training digits and the fonts (no fonts: their share is warped digits)."""
    rng = np.random.default_rng([seed, 25])
    counts = {name: round(size * share) for name, share in SHARES.items()}
    if not font_paths:
        counts["warped"] += counts["fonts"]
        counts["fonts"] = 0
    counts["scans"] = size - sum(count for name, count in counts.items() if name != "scans")
    images, labels, sources = [], [], []
    for source, count in counts.items():
        if count == 0:
            continue
        if source == "fonts":
            made, made_labels = font_digits(font_paths, count, rng)
        elif source == "edits":
            made, made_labels = edited_digits(train_u8, train_labels, count, rng)
        elif source == "warped":
            made, made_labels = warped_digits(train_u8, train_labels, count, rng)
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


def warped_digits(
    train_u8: np.ndarray, train_labels: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[list, np.ndarray]:
    """`count` training digits in other hands: another pen (thicker or thinner), slanted, turned,
    stretched and elastically distorted like the font digits."""
    picks = rng.choice(len(train_u8), count, replace=False)
    canvases = [other_pen(as_canvas(train_u8[i]), rng) for i in picks]
    warped = warp(np.stack(canvases), rng, slant=0.3, rotate_deg=12, elastic=0.06, wobble=0.012)
    # A warp that closes a loop (a hooked 7 made a 9) keeps the digit unwarped: no label noise.
    pairs = zip(canvases, warped, strict=True)
    kept = [new if holes(new > 0.35) <= holes(old > 0.35) else old for old, new in pairs]
    return kept, train_labels[picks].astype(np.int64)


def other_pen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` written with a thicker pen (unless that closes a loop) or a thinner one (unless that
    breaks the strokes), or as it is."""
    draw = rng.random()
    if draw > 0.5:
        return image
    ink = Image.fromarray(np.round(image * 255).astype(np.uint8))
    if draw < 0.25:
        other = (
            np.asarray(ink.filter(ImageFilter.MaxFilter(3 if rng.random() < 0.6 else 5)), np.float32) / 255
        )
        return other if holes(other > 0.35) <= holes(image > 0.35) else image
    other = np.asarray(ink.filter(ImageFilter.MinFilter(3)), np.float32) / 255
    _, pieces = label_components(other > 0.35)
    _, before = label_components(image > 0.35)
    return other if pieces <= before and (other > 0.35).sum() > 0.45 * (image > 0.35).sum() else image


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


# Scan- and photo-like damage, and MNIST form ------------------------------------------------------


def to_mnist_form(image: np.ndarray, damaged: bool, rng: np.random.Generator) -> np.ndarray:
    """A WORK x WORK white-on-black image through predict's preprocessing (after damage, if asked)."""
    try:
        side = small_side(image, rng) if rng.random() < SMALL_SHARE else None
        if not damaged:
            return normalize_digit(shrink(image, side) if side else image, invert="no")
        hurt = damage(image, rng)
        return normalize_digit(shrink(hurt, side) if side else hurt, invert="auto")
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


def small_side(image: np.ndarray, rng: np.random.Generator) -> int | None:
    """The side to scan `image` at so that its digit is 11-17 pixels tall; None where that would close
    a loop (the gap of a hooked 7 filled in), so the digit keeps its size."""
    side = int(round(WORK * rng.uniform(0.33, 0.5)))
    return side if holes(shrink(image, side) > 0.35) <= holes(image > 0.35) else None


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """`image` as a small scan gives it: `side` pixels square (box-filtered), to be enlarged again by the
    preprocessing."""
    picture = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return np.asarray(picture.resize((side, side), Image.BOX), np.float32) / 255


def smooth_field(rng: np.random.Generator, low: float, high: float, cells: int = 4) -> np.ndarray:
    """A smooth random WORK x WORK field between `low` and `high`."""
    coarse = Image.fromarray(rng.uniform(low, high, (cells, cells)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((WORK, WORK), Image.BICUBIC), np.float32).clip(low, high)
