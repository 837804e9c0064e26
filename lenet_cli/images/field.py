"""A whole written field's ink (a number, a date: several marks), cleaned as `lenet predict` cleans one digit
but not cropped to one: the cuts come later (segment.py)."""

from __future__ import annotations

import numpy as np

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import ImageError
from lenet_cli.images.preprocess import (
    _background,
    _lower_median,
    _near,
    _noise_level,
    _otsu_threshold,
    _unit,
)

TEXTURE_CONTRAST = 2.5  # ink this many times stronger than a middle level of "ink" makes that level a texture


def clean_ink(grey: np.ndarray, invert: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A whole image's ink, cleaned as a single digit's is (polarity, background, paper noise), without
    cropping: float32 (H, W), bright ink on black, and its Otsu mask. For images with several marks in
    them (a written number), where the crop to one digit comes later."""
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    levels = _unit(grey)
    # Ink is a minority of a written field, but a printed box may run all round its border: the polarity
    # comes from the whole field.
    if invert == "yes" or (invert == "auto" and _lower_median(levels.ravel()) > 0.5):
        levels = np.float32(1.0) - levels
    ink = np.maximum(levels - _background(levels), 0)
    peak = ink.max()
    if float(peak) < 0.08:
        raise ImageError("no digit found (the image is blank)")
    threshold = _otsu_threshold(ink / peak) * float(peak)
    # A printed or textured background is a third level between the paper and the ink; when what lies
    # above the first threshold splits into two clearly apart levels, the ink is the upper one.
    above = ink[ink > threshold]
    upper = _otsu_threshold(above / peak) * float(peak)
    strong, faint = above[above > upper], above[above <= upper]
    if faint.size and strong.size and float(strong.mean()) > TEXTURE_CONTRAST * float(faint.mean()):
        threshold = upper
    mask = ink > threshold
    noise = _noise_level(ink, ~_near(mask, 1 + max(ink.shape) // 50))
    return np.maximum(ink - noise, 0), mask
