"""Any image file -> the 28x28 MNIST form the network was trained on.

MNIST's own recipe, made robust for real drawings, scans and photos:
1. decode with Pillow (decode.py: EXIF orientation applied, alpha composited over the paper, first frame);
2. grey levels, digit bright on black (polarity detected from the border, or forced);
3. subtract a smooth background estimate, so uneven lighting and paper tone drop out, and zero
   what is left of the paper's noise (ink.py);
4. locate the ink with Otsu's threshold (used only to find it; grey levels are kept);
5. crop to the ink, thicken strokes that would otherwise vanish when shrunk, scale the longer
   side to 20 pixels with anti-aliasing, and paste into 28x28 with the intensity centre of mass
   on pixel (14, 14), as MNIST does. An MNIST digit passes through unchanged.

The work is numpy's (resampling included: resample.py), so reading a digit never imports torch;
`load_digit` hands the result over as a torch tensor for the code that trains and serves. Many files
at once: many_files.py.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import ImageError
from lenet_cli.images.decode import Source, decode_grey, read_grey, unit
from lenet_cli.images.image_ops import dilate, min_3x3, pad, spread
from lenet_cli.images.ink import background_estimate, border, lower_median, near, noise_level, otsu_threshold
from lenet_cli.images.resample import resample

if TYPE_CHECKING:
    import torch

DIGIT_BOX = 20  # MNIST digits fit a 20x20 box ...
CANVAS = 28  # ... centred by mass in 28x28
MNIST_STROKE = 2.5  # typical MNIST stroke width, in pixels of the 20-pixel box
# From this size up the ink is located on every other pixel of every other row (a sample, not an average,
# so paper noise keeps its level); only the region around the digit is then worked on at full resolution.
SAMPLED_PIXELS = 250_000


def read_digit(source: Source, invert: str = "auto") -> np.ndarray:
    """Read an image file (a path, or its bytes) and return the digit as MNIST sees it: uint8 (28, 28),
    white on black."""
    grey = (
        decode_grey(io.BytesIO(source)) if isinstance(source, bytes | bytearray) else read_grey(Path(source))
    )
    return normalize_digit(grey, invert=invert)


def load_digit(source: Source, invert: str = "auto") -> torch.Tensor:
    """`read_digit` as a torch tensor."""
    import torch

    return torch.from_numpy(read_digit(source, invert=invert))


def normalize_digit(grey: np.ndarray, invert: str = "auto") -> np.ndarray:
    """Grey levels (H, W), uint8 or float32 in [0, 1] -> uint8 (28, 28) in MNIST form, digit white on black."""
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    inverted = invert == "yes" or (invert == "auto" and lower_median(unit(border(grey))) > 0.5)
    return ink_to_mnist(*_crop_to_ink(grey, inverted))


def ink_to_mnist(digit: np.ndarray, mask: np.ndarray, resampler: Callable | None = None) -> np.ndarray:
    """Cleaned ink cropped to one digit (bright on black) and its Otsu mask -> uint8 (28, 28), MNIST form."""
    digit = digit / digit.max()
    scale = DIGIT_BOX / max(digit.shape)
    digit = _thicken(digit, mask, scale)
    height, width = digit.shape
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = (resampler or resample)(digit, new_size, antialias=True)
    resized = resized / resized.max()  # in [0, 1]: the antialiasing filter's weights are all positive
    return _center_by_mass(resized)


def _crop_to_ink(grey: np.ndarray, inverted: bool) -> tuple[np.ndarray, np.ndarray]:
    """The digit's ink (background and paper noise removed) cropped to it, and its Otsu mask.

    On a large image the statistics (background, threshold, noise floor) come from a sample of every
    other pixel of every other row, which keeps the paper's noise as it is, and the geometry (where
    the ink is) from 2x2 blocks' strongest ink, which no stroke can slip between; only the region
    around the digit is then worked on at full resolution. Only what is worked on is made float and,
    for dark ink on light paper, inverted.
    """

    def ink_up(levels: np.ndarray) -> np.ndarray:
        levels = unit(levels)
        return np.float32(1.0) - levels if inverted else levels

    step = 2 if grey.size > SAMPLED_PIXELS else 1
    sample = ink_up(np.ascontiguousarray(grey[::step, ::step]) if step > 1 else grey)
    background = background_estimate(sample)
    ink = np.maximum(sample - background, 0)
    peak = ink.max()
    if float(peak) < 0.08:
        raise ImageError("no digit found (the image is blank)")
    threshold = otsu_threshold(ink / peak) * float(peak)
    # Paper grain and sensor noise: zero everything at or below the noise's 99th percentile, measured
    # away from the strokes (so anti-aliased stroke edges do not count as noise). The background is
    # then black as in MNIST, and the stroke-thickening below cannot grow noise.
    strongest = np.maximum(ink_up(_strongest_in_blocks(grey, inverted)) - background, 0) if step > 1 else ink
    near_ink = near(strongest > threshold, 1 + max(ink.shape) // 50)
    noise = noise_level(ink, ~near_ink)
    ink = strongest
    # The crop keeps the faint edges of strokes, as MNIST's boxes do, but not specks far from them.
    top, bottom, left, right = _extent((ink - noise > 0) & near_ink)
    if step > 1:  # back to full resolution, around the digit only
        rows = slice(top * step, min(grey.shape[0], bottom * step))
        cols = slice(left * step, min(grey.shape[1], right * step))
        size = (rows.stop - rows.start, cols.stop - cols.start)
        background = resample(background[top:bottom, left:right], size)
        near_ink = spread(near_ink[top:bottom, left:right], step, size)
        ink = np.maximum(ink_up(grey[rows, cols]) - background, 0)
        top, bottom, left, right = _extent((ink - noise > 0) & near_ink)
    mask = ink[top:bottom, left:right] > threshold
    return np.maximum(ink[top:bottom, left:right] - noise, 0), mask


def _strongest_in_blocks(grey: np.ndarray, inverted: bool) -> np.ndarray:
    """Each 2x2 block's strongest ink (the darkest level for dark ink, else the brightest), the
    same size as grey[::2, ::2]."""
    height, width = grey.shape
    paper = (255 if grey.dtype == np.uint8 else 1.0) if inverted else 0
    padded = pad(grey, (0, height % 2), (0, width % 2), paper)
    strongest = np.minimum if inverted else np.maximum
    rows = strongest(padded[0::2], padded[1::2])
    return strongest(rows[:, 0::2], rows[:, 1::2])


def _extent(where: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the True pixels."""
    rows, cols = np.flatnonzero(where.any(axis=1)), np.flatnonzero(where.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _thicken(digit: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
    """Dilate strokes thinner than MNIST's, measured at the size they will be shrunk to.

    Stroke width is estimated as 2 * area / boundary of the ink mask (exact for long strokes).
    """
    area = float(np.count_nonzero(mask))
    boundary = max(float(np.count_nonzero(mask & ~min_3x3(mask, outside=False))), 1.0)
    stroke = 2 * area / boundary
    wanted = MNIST_STROKE / scale  # in source pixels
    grow = int(round((wanted - stroke) / 2))
    if grow < 1:
        return digit
    return dilate(digit, grow)


def _center_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste `digit` (h, w <= 20) into 28x28 with its intensity centre of mass on pixel (14, 14)."""
    height, width = digit.shape
    total = digit.sum()
    row_mass = float((digit.sum(axis=1) * np.arange(height, dtype=np.float32)).sum() / total)
    col_mass = float((digit.sum(axis=0) * np.arange(width, dtype=np.float32)).sum() / total)
    top = min(max(round(CANVAS / 2 - row_mass), 0), CANVAS - height)
    left = min(max(round(CANVAS / 2 - col_mass), 0), CANVAS - width)
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    canvas[top : top + height, left : left + width] = np.round(digit * 255)  # digit is in [0, 1]
    return canvas


def save_png(image_u8: np.ndarray | torch.Tensor, path: Path) -> None:
    Image.fromarray(np.asarray(image_u8, dtype=np.uint8), mode="L").save(path)
