"""The pictures `lenet read --show` draws of a number read: the field with each digit's box outlined, and
the 28x28 inputs the network was given side by side (uint8 grey, for the terminal's block characters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lenet_cli.images.resample import resample

if TYPE_CHECKING:
    from lenet_cli.inference.numbers import ReadDigit, Reading

OUTLINE = (
    128  # the grey level of the digit boxes drawn into an overview (seen on a black-and-white terminal too)
)


def overview(reading: Reading, rows: int = 28, max_columns: int = 160) -> np.ndarray:
    """The field at `rows` pixels tall (narrower if it would pass `max_columns`) with each digit's box
    outlined: uint8, for a terminal picture."""
    assert reading.field is not None
    height, width = reading.field.shape
    factor = min(rows / height, max_columns / width)
    size = (max(1, round(height * factor / 2)) * 2, max(1, round(width * factor)))  # even: two rows a line
    picture = resample(reading.field.astype(np.float32), size, antialias=True)
    picture = np.clip(np.round(picture), 0, 255).astype(np.uint8)
    for digit in reading.digits:
        x, y, w, h = (round(value / reading.scale * factor) for value in digit.box)
        x, y = min(x, size[1] - 1), min(y, size[0] - 1)
        right, bottom = min(x + max(w, 1), size[1]) - 1, min(y + max(h, 1), size[0]) - 1
        for rows_, cols_ in ((y, slice(x, right + 1)), (bottom, slice(x, right + 1))):
            line = picture[rows_, cols_]
            line[line < OUTLINE] = OUTLINE
        for cols_ in (x, right):
            line = picture[y : bottom + 1, cols_]
            line[line < OUTLINE] = OUTLINE
    return picture


def inputs_strip(digits: list[ReadDigit], gap: int = 2) -> np.ndarray:
    """The 28x28 inputs of these digits side by side, `gap` black columns apart."""
    strip = np.zeros((28, max(1, len(digits) * (28 + gap) - gap)), np.uint8)
    for index, digit in enumerate(digits):
        strip[:, index * (28 + gap) : index * (28 + gap) + 28] = digit.seen
    return strip
