"""Bilinear resampling in numpy that gives torch's float32 results bit for bit.

`F.interpolate(mode="bilinear", align_corners=False)` on a (1, 1, H, W) float32 CPU tensor, with and
without `antialias`, is what preprocessing used before; predictions made without torch must see the
same 28x28 inputs. Exact equality needs torch's arithmetic step by step, and its CPU kernels are
compiled with fused multiply-adds (a * b + c rounded once), so those are emulated exactly here:

- without antialias, outputs of at most 128 rows + columns take torch's channels-last kernel
  (x01*w01 first, then x00, x10 and x11 fused in), larger ones its generic kernel (each row's two
  taps fused, then the two rows fused); source positions are scale * (i + 0.5) - 0.5, fused;
- with antialias, a horizontal pass then a vertical one (each skipped where the size is unchanged),
  with torch's triangle-filter weights; the taps after the first are added in blocks of four products
  rounded on their own, the remaining taps fused. torch's vertical pass over a one-pixel-wide image
  repeats its first output row, and that is kept too.

tests/test_resample.py compares these with torch on random images of many sizes.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np

F32, F64 = np.float32, np.float64
SMALL_OUTPUT = 128  # torch uses its channels-last kernel when output rows + columns are at most this
_LOW_BITS = np.uint64((1 << 29) - 1)  # the bits of a float64 mantissa below float32's precision
_HALF = np.uint64(1 << 28)  # ... set to exactly half a float32 step


def fused(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 a * b + c rounded once, as an FMA instruction computes it.

    The product of two float32s is exact in float64; the sum is rounded to float64 and then to float32.
    The second rounding can only go wrong when the first lands exactly halfway between two float32s;
    there the exact remainder of the float64 sum says which way to go."""
    product = np.multiply(a, b, dtype=F64)
    addend = np.asarray(c, dtype=F64)
    total = product + addend
    halfway = (np.ascontiguousarray(total).view(np.uint64) & _LOW_BITS) == _HALF
    if halfway.any():
        total = np.array(total, dtype=F64)
        product, addend = np.broadcast_to(product, total.shape), np.broadcast_to(addend, total.shape)
        spot = np.nonzero(halfway)
        exact, first, second = total[spot], product[spot], addend[spot]
        back = exact - first
        remainder = (first - (exact - back)) + (second - back)  # Knuth's TwoSum: exact - rounded
        towards = np.where(remainder > 0, np.inf, -np.inf)
        total[spot] = np.where(remainder != 0, np.nextafter(exact, towards), exact)
    return total.astype(F32)


def resample(image: np.ndarray, size: tuple[int, int], antialias: bool = False) -> np.ndarray:
    """`image` (H, W) resampled to `size` (rows, columns), float32, as torch's bilinear interpolation
    (half-pixel centres; with `antialias`, PIL's filter widened when shrinking). Where torch is already
    loaded (serve, evaluate, train) torch does it, several times faster on large images; elsewhere numpy
    does, with the same numbers (`resample_in_numpy`)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return resample_in_numpy(image, size, antialias)
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=F32))[None, None]
    return torch.nn.functional.interpolate(
        tensor, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False, antialias=antialias
    )[0, 0].numpy()


def resample_in_numpy(image: np.ndarray, size: tuple[int, int], antialias: bool = False) -> np.ndarray:
    """`resample` without torch: torch's float32 results bit for bit."""
    image = np.ascontiguousarray(image, dtype=F32)
    rows, cols = int(size[0]), int(size[1])
    if antialias:
        return _antialiased(image, rows, cols)
    if rows + cols <= SMALL_OUTPUT:
        return _bilinear_small(image, rows, cols)
    return _bilinear_large(image, rows, cols)


def _taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each output position along one axis: its two source indices and their weights."""
    positions = np.arange(size_out)
    if size_in == size_out:
        return positions, positions, np.ones(size_out, F32), np.zeros(size_out, F32)
    scale = F32(size_in) / F32(size_out)
    centres = positions.astype(F32) + F32(0.5)
    source = np.maximum(fused(np.full(size_out, scale, F32), centres, np.full(size_out, -0.5, F32)), F32(0))
    first = np.minimum(np.floor(source).astype(np.int64), size_in - 1)
    weight_second = np.clip(source - first.astype(F32), F32(0), F32(1)).astype(F32)
    second = first + (first < size_in - 1)
    return first, second, (F32(1) - weight_second).astype(F32), weight_second


def _corners(image: np.ndarray, rows: int, cols: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    top, bottom, weight_top, weight_bottom = _taps(image.shape[0], rows)
    left, right, weight_left, weight_right = _taps(image.shape[1], cols)
    upper, lower = image[top], image[bottom]
    pixels = [upper[:, left], upper[:, right], lower[:, left], lower[:, right]]
    return pixels, [weight_top[:, None], weight_bottom[:, None], weight_left[None, :], weight_right[None, :]]


def _bilinear_small(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    (x00, x01, x10, x11), (h0, h1, w0, w1) = _corners(image, rows, cols)
    out = x01 * (h0 * w1)
    out = fused(x00, h0 * w0, out)
    out = fused(x10, h1 * w0, out)
    return fused(x11, h1 * w1, out)


def _bilinear_large(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    (x00, x01, x10, x11), (h0, h1, w0, w1) = _corners(image, rows, cols)
    upper = fused(x00, w0, x01 * w1)
    lower = fused(x10, w0, x11 * w1)
    return fused(upper, h0, lower * h1)


def _antialiased(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    if cols != image.shape[1]:
        image = _filter_rows(image, cols)
    if rows != image.shape[0]:
        if image.shape[1] == 1:  # torch's vertical pass reads one column's taps for all of them
            first = _filter_rows(np.ascontiguousarray(image.T), rows)[:, :1]
            return np.repeat(first, rows, axis=0)
        image = np.ascontiguousarray(_filter_rows(np.ascontiguousarray(image.T), rows).T)
    return image


def _filter_rows(image: np.ndarray, size_out: int) -> np.ndarray:
    """Each row filtered down (or up) to `size_out` values with torch's antialiasing weights."""
    starts, counts, weights = _aa_weights(image.shape[1], size_out)
    taps = weights.shape[1]
    columns = np.minimum(starts[:, None] + np.arange(taps)[None, :], image.shape[1] - 1)
    out = image[:, columns[:, 0]] * weights[:, 0]
    blocked = 4 * ((counts - 1) // 4)  # taps 1..blocked are added as rounded products
    for tap in range(1, taps):
        used = tap < counts
        if not used.any():
            break
        pixels, weight = image[:, columns[:, tap]], weights[:, tap]
        rounded = out + pixels * weight
        if (
            used & (tap > blocked)
        ).any():  # only the last few taps are fused: skip the costly emulation before
            rounded = np.where(
                tap <= blocked, rounded, fused(pixels, np.broadcast_to(weight, pixels.shape), out)
            )
        out = np.where(used, rounded, out).astype(F32)
    return out


@functools.lru_cache(maxsize=4096)
def _aa_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's triangle-filter taps along one axis: first source index, tap count and normalised
    weights (zero past the count) for each output position, with its mix of float and double steps.
    Kept for the sizes seen (the number reader asks for the same few many times); read-only."""
    scale = F32(size_in) / F32(size_out)
    support = F32(float(scale)) if scale >= 1 else F32(1.0)
    invscale = F32(1.0 / float(scale)) if scale >= 1 else F32(1.0)
    max_taps = int(math.ceil(float(support))) * 2 + 1
    centres = (float(scale) * (np.arange(size_out, dtype=F64) + 0.5)).astype(F32)
    starts = np.maximum(np.trunc((centres - support).astype(F64) + 0.5), 0).astype(np.int64)
    ends = np.minimum(np.trunc((centres + support).astype(F64) + 0.5).astype(np.int64), size_in)
    counts = np.clip(ends - starts, 0, max_taps)
    offsets = (starts[:, None] + np.arange(max_taps)[None, :]).astype(F32) - centres[:, None]
    distance = np.abs(((offsets.astype(F64) + 0.5) * float(invscale)).astype(F32))
    weights = np.where(distance < 1.0, (1.0 - distance.astype(F64)).astype(F32), F32(0))
    weights[np.arange(max_taps)[None, :] >= counts[:, None]] = 0
    total = np.zeros(size_out, F32)
    for tap in range(max_taps):  # summed in order, in float32, as torch does
        total = (total + weights[:, tap]).astype(F32)
    nonzero = total != 0
    weights[nonzero] = (weights[nonzero] / total[nonzero, None]).astype(F32)
    for array in (starts, counts, weights):
        array.flags.writeable = False
    return starts, counts, weights


def resample_by_matrices(image: np.ndarray, size: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """torch's antialiased bilinear filter (the weights `resample` uses when shrinking) as two matrix
    products, float32: the same weights summed in another order, so it agrees with `resample` to float32
    rounding, not bit for bit. For the number reader, which puts dozens of small candidates into MNIST
    form per field, with or without torch: several times faster than the exact emulation, and the same
    with torch loaded or not."""
    if not antialias:
        raise ValueError("resample_by_matrices filters as antialias=True does")
    rows, cols = int(size[0]), int(size[1])
    image = np.asarray(image, dtype=F32)
    return _filter_matrix(image.shape[0], rows) @ image @ _filter_matrix(image.shape[1], cols).T


@functools.lru_cache(maxsize=4096)
def _filter_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in): row i holds output i's filter taps over the input; read-only."""
    if size_in == size_out:
        matrix = np.eye(size_in, dtype=F32)
    else:
        starts, counts, weights = _aa_weights(size_in, size_out)
        matrix = np.zeros((size_out, size_in), F32)
        for tap in range(weights.shape[1]):
            used = np.flatnonzero(tap < counts)
            np.add.at(matrix, (used, np.minimum(starts[used] + tap, size_in - 1)), weights[used, tap])
    matrix.flags.writeable = False
    return matrix
