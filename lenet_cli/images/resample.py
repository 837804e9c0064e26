"""Bilinear resampling in numpy: the one resampler every path uses, with torch loaded or not.

Half-pixel centres (torch's `align_corners=False`); with `antialias`, shrinking widens the triangle
filter to the scale, as PIL and torch do, so a large digit is averaged down rather than sampled. The
image is filtered along its rows, then its columns: growing, each output mixes the two source pixels
either side of it (float32); shrinking with antialias, each output is a normalised triangle-weighted
sum of the pixels under the filter, as one matrix product in float64 rounded to float32 (float64's
summation order, which BLAS may choose by CPU, stays below what float32 keeps). So an image gives the
same 28x28 input whichever command reads it, and the arithmetic imitates no library's internals.
"""

from __future__ import annotations

import functools
import math

import numpy as np

F32, F64 = np.float32, np.float64
Linear = tuple[np.ndarray, np.ndarray]  # (size_out, 2) source indices and their float32 weights
Filter = Linear | np.ndarray | None  # a Linear, a (size_in, size_out) float64 matrix, or None: unchanged


def resample(image: np.ndarray, size: tuple[int, int], antialias: bool = False) -> np.ndarray:
    """`image` (H, W) resampled to `size` (rows, columns) with bilinear interpolation, float32."""
    image = np.asarray(image, dtype=F32)
    rows, cols = int(size[0]), int(size[1])
    across = _filter_rows(image, _filter(image.shape[1], cols, antialias))
    return _filter_rows(np.ascontiguousarray(across.T), _filter(image.shape[0], rows, antialias)).T


def _filter_rows(image: np.ndarray, weights: Filter) -> np.ndarray:
    """Each row of `image` filtered to its new length."""
    if weights is None:
        return image
    if isinstance(weights, np.ndarray):
        return (image.astype(F64) @ weights).astype(F32)
    sources, pair = weights
    return image[:, sources[:, 0]] * pair[:, 0] + image[:, sources[:, 1]] * pair[:, 1]


@functools.lru_cache(maxsize=4096)
def _filter(size_in: int, size_out: int, antialias: bool) -> Filter:
    """The filter along one axis. Kept for the sizes seen (the number reader asks for the same few
    many times); read-only."""
    if size_in == size_out:
        return None
    scale = size_in / size_out
    centres = scale * (np.arange(size_out) + 0.5)  # in source pixels, pixel j covering [j, j + 1)
    if antialias and scale > 1:
        matrix = _triangle(centres, size_in, support=scale)
        matrix.flags.writeable = False
        return matrix
    sources, pair = _linear(centres, size_in)
    sources.flags.writeable = pair.flags.writeable = False
    return sources, pair


def _linear(centres: np.ndarray, size_in: int) -> Linear:
    """The source pixels on either side of each centre (clamped at the edges) and their weights."""
    position = np.maximum(centres - 0.5, 0)
    first = np.minimum(np.floor(position).astype(np.int64), size_in - 1)
    second = np.minimum(first + 1, size_in - 1)
    weight_second = np.clip(position - first, 0, 1)
    pair = np.stack([1 - weight_second, weight_second], axis=1).astype(F32)
    return np.stack([first, second], axis=1), pair


def _triangle(centres: np.ndarray, size_in: int, support: float) -> np.ndarray:
    """(size_in, size_out): for each output (a column), a triangle `support` source pixels wide on
    either side of its centre over the source pixels whose centres it reaches, normalised to sum to 1
    (PIL's and torch's antialiasing filter)."""
    starts = np.maximum(np.floor(centres - support + 0.5), 0).astype(np.int64)
    ends = np.minimum(np.floor(centres + support + 0.5).astype(np.int64), size_in)
    sources = starts[:, None] + np.arange(int(math.ceil(support)) * 2 + 1)[None, :]
    reached = sources < ends[:, None]
    weights = np.where(reached, np.maximum(1 - np.abs(sources + 0.5 - centres[:, None]) / support, 0), 0)
    weights /= weights.sum(axis=1, keepdims=True)
    matrix = np.zeros((size_in, len(centres)), F64)
    outputs = np.broadcast_to(np.arange(len(centres))[:, None], sources.shape)
    matrix[sources[reached], outputs[reached]] = weights[reached]
    return matrix
