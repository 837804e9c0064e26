"""The reader's cuts as training data (`lenet train --cuts`): numbers composed from the run's training digits,
cut exactly as `lenet read` cuts them, each candidate piece labelled by whose ink it holds.

A number of 2-6 training digits is laid out at the reader's scale (digits 20-48 pixels tall, from well
apart to overlapping by a quarter of a digit, slanted, on noisy paper) with a map of which digit owns each
pixel of ink. The field then goes through the reader's own clean-up (images/field.py), cuts
(images/segment.py) and MNIST form (images/field_cuts.py), so the network learns from the pieces it will
be shown. A candidate that holds one digit's ink (fragments of its neighbours allowed) keeps that digit's
label: it teaches reading a digit cut out of a touching pair. One that holds most of two digits, or only
part of one, is a bad cut and is labelled NOT_A_DIGIT: training asks the network for no digit there (the
uniform answer), as the 1998 paper trained LeNet-5 on the garbage its segmenter made, so that the
reader's path through the cuts prefers the right ones.

Numpy and Pillow only, seeded: the same training digits and seed give the same pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from lenet_cli.core.errors import ImageError, LenetError
from lenet_cli.images.field_cuts import cut_into_candidates

NOT_A_DIGIT = 10  # the label of a bad cut: not one digit
GAP_RANGES = ((0.1, 0.5), (-0.06, 0.08), (-0.28, -0.04))  # apart, touching, overlapping (digit heights)
GAP_WEIGHTS = (0.3, 0.3, 0.4)
ONE_DIGIT = 0.8  # a candidate with this share of a digit's ink ...
STRAY = 0.25  # ... and at most this share of any other's is that digit
MAX_NUMBERS_PER_PIECE = 4  # numbers composed per piece wanted, at most (images that give few pieces)
PART = 0.5  # a candidate with less than this of every digit's ink, or this of two, is a bad cut


@dataclass
class CutPool:
    images_u8: np.ndarray  # (N, 28, 28) in MNIST form, as the reader's network sees them
    labels: np.ndarray  # (N,) int64: 0-9, or NOT_A_DIGIT


def make_cut_pool(images_u8: np.ndarray, labels: np.ndarray, size: int, seed: int) -> CutPool:
    """`size` labelled candidates cut from numbers composed of `images_u8` (N, 28, 28) with `labels`.
    Bad cuts are at most half of the pool."""
    rng = np.random.default_rng([seed, 4_000_037])
    inputs: list[np.ndarray] = []
    targets: list[int] = []
    bad = 0
    for _ in range(MAX_NUMBERS_PER_PIECE * size):
        for seen, label in cut_number(images_u8, labels, rng):
            if label == NOT_A_DIGIT and bad >= size // 2:
                continue
            bad += label == NOT_A_DIGIT
            inputs.append(seen)
            targets.append(label)
        if len(inputs) >= size:
            break
    if not inputs:
        raise LenetError("--cuts found no digits to cut in numbers written with these training images")
    return CutPool(np.stack(inputs[:size]), np.array(targets[:size], np.int64))


def cut_number(
    images_u8: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> list[tuple[np.ndarray, int]]:
    """The labelled candidates of one number composed of random training digits."""
    picks = rng.integers(0, len(labels), int(rng.integers(2, 7)))
    grey, owner = compose_field([images_u8[index] for index in picks], rng)
    return cut_field(grey, owner, [int(labels[index]) for index in picks])


def cut_field(grey: np.ndarray, owner: np.ndarray, digits: list[int]) -> list[tuple[np.ndarray, int]]:
    """Each candidate the reader cuts from `grey` in MNIST form, with its label: the digit whose ink it
    holds (`owner`: 1-based index into `digits` of each pixel's digit, 0 for paper), or NOT_A_DIGIT.
    None when the reader finds nothing to cut; candidates neither one digit nor clearly bad are left out.
    The field is cut by the reader's own `cut_into_candidates`, so these are the pieces it will be shown."""
    try:
        cut = cut_into_candidates(grey)
    except ImageError:
        return []
    mask, pieces = cut.mask, cut.segmentation.labels
    digit_ink = [np.count_nonzero(mask & (owner == index + 1)) for index in range(len(digits))]
    found = []
    for (start, stop), seen in zip(cut.runs, cut.inputs, strict=True):
        chosen = (pieces > start) & (pieces <= stop) & mask
        shares = np.array(
            [
                np.count_nonzero(chosen & (owner == index + 1)) / max(total, 1)
                for index, total in enumerate(digit_ink)
            ]
        )
        order = np.argsort(shares)[::-1]
        first, second = shares[order[0]], (shares[order[1]] if len(shares) > 1 else 0.0)
        if first >= ONE_DIGIT and second <= STRAY:
            label = digits[order[0]]
        elif first < PART or second >= PART:
            label = NOT_A_DIGIT
        else:
            continue
        found.append((seen, label))
    return found


def compose_field(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A grey field (dark ink on light paper, uint8) with `digits` written left to right, and which digit
    (1-based; 0 for paper) owns each pixel's ink."""
    height = float(rng.uniform(20, 48))
    gap_range = GAP_RANGES[rng.choice(len(GAP_RANGES), p=GAP_WEIGHTS)]
    crops = [_scaled_crop(digit, height * rng.uniform(0.9, 1.08)) for digit in digits]
    gaps = [height * rng.uniform(*gap_range) for _ in crops]
    margin = int(height * 0.4) + 2
    lefts, x = [], float(margin)
    for crop, gap in zip(crops, gaps, strict=True):
        lefts.append(int(round(x)))
        x += crop.shape[1] + gap
    canvas_h, canvas_w = int(height * 1.5) + 2 * margin, int(x) + 2 * margin
    stack = np.zeros((len(crops), canvas_h, canvas_w), np.float32)
    for index, (crop, left) in enumerate(zip(crops, lefts, strict=True)):
        top = int((canvas_h - crop.shape[0]) / 2 + height * rng.uniform(-0.08, 0.08))
        stack[index, top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    slant = float(rng.uniform(-0.2, 0.2))
    stack = np.stack([_shear(layer, slant) for layer in stack])
    ink = stack.max(axis=0)
    owner = np.where(ink > 0.05, stack.argmax(axis=0) + 1, 0)
    paper, dark = rng.uniform(190, 250), rng.uniform(0, 90)
    grey = paper - (paper - dark) * ink + rng.normal(0, rng.uniform(0, 8), ink.shape)
    return np.clip(grey, 0, 255).astype(np.uint8), owner


def _scaled_crop(digit_u8: np.ndarray, height: float) -> np.ndarray:
    """An MNIST digit scaled so that its 20-pixel box is `height` tall, cropped to its ink, in [0, 1]."""
    size = max(8, int(round(28 * height / 20)))
    image = Image.fromarray(digit_u8).resize((size, size), Image.BILINEAR)
    ink = np.asarray(image, np.float32) / 255
    rows, cols = np.flatnonzero((ink > 0.1).any(axis=1)), np.flatnonzero((ink > 0.1).any(axis=0))
    if len(rows) == 0:
        return ink
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _shear(layer: np.ndarray, slant: float) -> np.ndarray:
    """Shear a layer sideways about its middle row (a slanted hand), keeping its size."""
    height = layer.shape[0]
    coefficients = (1, slant, -slant * height / 2, 0, 1, 0)
    image = Image.fromarray(layer).transform(layer.shape[::-1], Image.AFFINE, coefficients, Image.BILINEAR)
    return np.asarray(image, np.float32)
