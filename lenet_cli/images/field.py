"""A whole written field's ink (a number, a date: several marks), cleaned as `lenet predict` cleans one digit
but not cropped to one: the cuts come later (segment.py)."""

from __future__ import annotations

import numpy as np

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import ImageError
from lenet_cli.images.decode import unit
from lenet_cli.images.image_ops import dilate, min_3x3
from lenet_cli.images.ink import background_estimate, lower_median, near, noise_level, otsu_threshold
from lenet_cli.images.segment import label_components

TEXTURE_CONTRAST = 2.5  # ink this many times stronger than a middle level of "ink" makes that level a texture
BAND_LEVEL = 0.5  # levels (ink bright) above this that run in from an edge of the image ...
BAND_SHARE = 0.05  # ... at least this share of its size deep in most rows are a scan band (the scanner's
BAND_MARGIN = (
    0.03  # lid past the page's edge); this share of the size beyond its edge goes with it (its shade)
)
# Faint strokes: ink above this share of the threshold, and this many times the paper's noise floor, is
# ink where it joins the thresholded strokes (hysteresis); a thick stroke keeps its own edge (HALO pixels).
FAINT_SHARE = 0.5
FAINT_OVER_NOISE = 1.75
HALO = 2


def clean_ink(grey: np.ndarray, invert: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A whole image's ink, cleaned as a single digit's is (polarity, background, paper noise), without
    cropping: float32 (H, W), bright ink on black, and its Otsu mask. For images with several marks in
    them (a written number), where the crop to one digit comes later."""
    ink, mask, _ = clean_field(grey, invert)
    return ink, mask


def clean_field(grey: np.ndarray, invert: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`clean_ink`'s ink and mask, and where the scan ran past the page (bool (H, W): the bands painted
    over as paper, beyond the field's edge for what lies next to them)."""
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    levels = unit(grey)
    # Ink is a minority of a written field, but a printed box may run all round its border: the polarity
    # comes from the whole field, less any dark band where a scan of light paper ran past the page (it
    # may cover half the image).
    if invert == "yes" or (invert == "auto" and lower_median(_off_dark_bands(levels)) > 0.5):
        levels = np.float32(1.0) - levels
    levels, band = without_bands(levels)
    ink = np.maximum(levels - background_estimate(levels), 0)
    peak = ink.max()
    if float(peak) < 0.08:
        raise ImageError("no digit found (the image is blank)")
    threshold = otsu_threshold(ink / peak) * float(peak)
    # A printed or textured background is a third level between the paper and the ink; when what lies
    # above the first threshold splits into two clearly apart levels, the ink is the upper one.
    above = ink[ink > threshold]
    upper = otsu_threshold(above / peak) * float(peak)
    strong, faint = above[above > upper], above[above <= upper]
    if faint.size and strong.size and float(strong.mean()) > TEXTURE_CONTRAST * float(faint.mean()):
        threshold = upper
    mask = ink > threshold
    noise = noise_level(ink, ~near(mask, 1 + max(ink.shape) // 50))
    mask = with_faint_strokes(mask, ink, max(FAINT_SHARE * threshold, FAINT_OVER_NOISE * noise))
    return np.maximum(ink - noise, 0), mask, band


def with_faint_strokes(mask: np.ndarray, ink: np.ndarray, low: float) -> np.ndarray:
    """The mask grown by hysteresis: ink above `low` that joins (8-neighbours) the mask's strokes, so that
    the faint part of a stroke (a light first digit, a pen running dry) stays with its strong part, while
    faint specks and shade that touch no stroke stay paper. A thin pen stroke takes its faint edges too
    (it is read as thick as MNIST's); a stroke at least 3 pixels thick keeps its own edge, but for where
    a faint stroke runs on from it."""
    labels, count = label_components((ink > low) | mask)
    if count == 0:
        return mask
    seeded = np.zeros(count + 1, bool)
    seeded[labels[mask]] = True
    seeded[0] = False
    grown = seeded[labels]
    # Around a thick stroke's core (what a 3x3 erosion leaves), only the faint ink beyond its edge.
    edge = dilate(min_3x3(mask, False), HALO)
    beyond = grown & ~edge
    return mask | beyond | (grown & dilate(beyond, HALO))


def _off_dark_bands(levels: np.ndarray) -> np.ndarray:
    """The levels (ink dark, as scanned) outside any dark band along the image's edges."""
    _, band = without_bands(np.float32(1.0) - levels)
    return levels[~band] if band.any() else levels.ravel()


def without_bands(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`levels` (ink bright) with the dark bands a scan leaves along its edges where it ran past the page
    painted over with the paper's level, so that neither the band nor its edge is taken for ink; and
    where the bands are."""
    band = np.zeros(levels.shape, bool)
    for flip_rows, flip_cols, transpose in ((0, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1)):
        view = levels.T if transpose else levels
        out = band.T if transpose else band
        view = view[::-1] if flip_rows else view
        out = out[::-1] if flip_rows else out
        view = view[:, ::-1] if flip_cols else view
        out = out[:, ::-1] if flip_cols else out
        _mark_band(view, out)
    if not band.any() or band.all():
        return levels, np.zeros(levels.shape, bool)
    painted = levels.copy()
    painted[band] = lower_median(levels[~band])
    return painted, band


def _mark_band(levels: np.ndarray, band: np.ndarray) -> None:
    """Mark in `band` (a view) a band along the left edge of `levels` (a view of the same shape)."""
    height, width = levels.shape
    dark = levels > BAND_LEVEL
    # How deep the dark run from the left edge goes in each row (the whole row when it is all dark).
    depth = np.where(dark.all(axis=1), width, np.argmin(dark, axis=1))
    if lower_median(depth) < max(3, BAND_SHARE * width):
        return
    # The band's edge in each row, smoothed over a stretch of rows so that ink touching it does not count.
    window = max(1, height // 8) | 1
    padded = np.pad(depth, window // 2, mode="edge")
    edge = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
    reach = np.ceil(edge + 2 + BAND_MARGIN * width).astype(np.int64)
    band |= np.arange(width)[None, :] < reach[:, None]
