"""Where the ink is in grey levels: the paper's smooth background, the paper's noise floor, Otsu's
threshold and the neighbourhood of strokes. What one digit (preprocess.py) and a whole field
(field.py) are cleaned with."""

from __future__ import annotations

import math

import numpy as np

from lenet_cli.images.image_ops import dilate, min_3x3, pad, spread
from lenet_cli.images.resample import resample

BACKGROUND_GRID = 16  # cells of the background estimate along the longer side


def border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def lower_median(values: np.ndarray) -> float:
    """The lower of the two middle values for an even count (as torch.median), not their mean."""
    middle = (len(values) - 1) // 2
    return float(np.partition(values, middle)[middle])


def background_estimate(grey: np.ndarray) -> np.ndarray:
    """A smooth estimate of the (dark) background under the digit, for uneven lighting.

    Each cell of a coarse grid takes its lower quartile (paper, unless ink covers three quarters of
    it); a cell full of ink takes its darkest neighbour's; bilinear interpolation joins the cells.
    """
    height, width = grey.shape
    cell = max(4, math.ceil(max(height, width) / BACKGROUND_GRID))
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    padded = grey
    if (rows * cell, cols * cell) != (height, width):  # the last row and column repeated to fill the grid
        source_rows = np.minimum(np.arange(rows * cell), height - 1)
        padded = grey[source_rows][:, np.minimum(np.arange(cols * cell), width - 1)]
    step = 2 if cell >= 16 else 1  # in large cells every other row and column is sample enough
    blocks = padded.reshape(rows, cell, cols, cell)[:, ::step, :, ::step].transpose(0, 2, 1, 3)
    blocks = blocks.reshape(rows, cols, -1)
    rank = max(1, blocks.shape[-1] // 4) - 1
    quartile = min_3x3(np.partition(blocks, rank, axis=-1)[..., rank], outside=np.inf)
    return resample(quartile, (rows * cell, cols * cell))[:height, :width]


def noise_level(ink: np.ndarray, paper: np.ndarray, sample: int = 200_000) -> float:
    """The 99th percentile of `ink` where `paper` is set, from an even sample of about `sample` pixels."""
    step = max(1, ink.size // sample)
    values = ink.ravel()[::step][paper.ravel()[::step]]
    if values.size == 0:
        return 0.0
    # Linear interpolation between the two order statistics around the 99th percentile (as
    # torch.quantile and np.quantile), found by a partial sort rather than a sort of everything.
    position = 0.99 * (len(values) - 1)
    below = int(math.floor(position))
    above = min(below + 1, len(values) - 1)
    ordered = np.partition(values, (below, above))
    low, high = ordered[below], ordered[above]
    return float(low + (high - low) * (position - below))


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold over 256 bins of values in [0, 1]."""
    bins = np.minimum((values * 256).astype(np.int64), 255)  # bin i holds [i/256, (i+1)/256); 1.0 the last
    histogram = np.bincount(bins.ravel(), minlength=256).astype(np.float64)
    levels = (np.arange(256, dtype=np.float64) + 0.5) / 256  # bin centres
    weight_low = np.cumsum(histogram)
    weight_high = histogram.sum() - weight_low
    mass_low = np.cumsum(histogram * levels)
    mean_low = mass_low / np.maximum(weight_low, 1e-12)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    # Split above the bin (not at its lower edge), in the middle of a plateau of equally good splits:
    # a clean two-tone image has one, and its first bin holds rounding residue, not ink.
    plateau = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    best = int(plateau.sum()) / len(plateau)  # its mean (ndarray.mean costs more than Otsu itself)
    return (best + 1) / 256


def near(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within about `radius` of the mask (all within `radius`, none beyond about 1.5x): the
    dilation is done on blocks of a quarter of the radius, then spread back to every pixel."""
    block = max(1, radius // 4)
    if block == 1:
        return dilate(mask, radius)
    height, width = mask.shape
    rows, cols = -(-height // block), -(-width // block)
    padded = pad(mask, (0, rows * block - height), (0, cols * block - width), False)
    blocks = padded.reshape(rows, block, cols, block).any(axis=(1, 3))
    return spread(dilate(blocks, math.ceil(radius / block)), block, mask.shape)
