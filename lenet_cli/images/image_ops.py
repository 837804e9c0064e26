"""Operations on 2-D image arrays that numpy lacks or makes slow on tiny images: constant padding,
3x3 erosion, square dilation and block spreading."""

from __future__ import annotations

import numpy as np


def spread(blocks: np.ndarray, size: int, shape: tuple[int, int]) -> np.ndarray:
    """Each value of `blocks` repeated over its size x size pixels, cut to `shape`."""
    pixels = np.repeat(np.repeat(blocks, size, axis=0), size, axis=1)
    return pixels[: shape[0], : shape[1]]


def min_3x3(image: np.ndarray, outside: float | bool) -> np.ndarray:
    """Each pixel's minimum over its 3x3 neighbourhood, pixels beyond the edge counting as `outside`."""
    padded = pad(image, (1, 1), (1, 1), outside)
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def dilate(image: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level (or boolean) dilation of a non-negative image by a (2r+1)-square: a running max
    along rows, then columns, each in O(log r) vectorised passes whatever r."""
    if radius < 1:
        return image
    return running_max(running_max(image, radius).T, radius).T


def running_max(image: np.ndarray, radius: int) -> np.ndarray:
    """The max over each window [x - r, x + r] along each row (zero padding: the image is non-negative).

    Doubling: after k passes each value is the max of 2^k neighbours; two such overlapping spans
    then cover the window exactly."""
    length = image.shape[1]
    size = 2 * radius + 1
    current, span = pad(image, (0, 0), (radius, radius), 0), 1
    while 2 * span <= size:
        current = np.maximum(current[:, :-span], current[:, span:])
        span *= 2
    return np.maximum(current[:, :length], current[:, size - span : size - span + length])


def pad(image: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], value: float | bool) -> np.ndarray:
    """`image` with (before, after) rows and columns of `value` around it (np.pad's constant mode,
    without its overhead, which is most of the cost on a 28x28 image)."""
    height, width = image.shape
    padded = np.full((rows[0] + height + rows[1], cols[0] + width + cols[1]), value, dtype=image.dtype)
    padded[rows[0] : rows[0] + height, cols[0] : cols[0] + width] = image
    return padded
