"""Any image file -> the 28x28 MNIST form the network was trained on.

MNIST's own recipe, made robust for real drawings, scans and photos:
1. decode with Pillow (EXIF orientation applied, alpha composited over the paper, first frame);
2. grey levels, digit bright on black (polarity detected from the border, or forced);
3. subtract a smooth background estimate, so uneven lighting and paper tone drop out, and zero
   what is left of the paper's noise;
4. locate the ink with Otsu's threshold (used only to find it; grey levels are kept);
5. crop to the ink, thicken strokes that would otherwise vanish when shrunk, scale the longer
   side to 20 pixels with anti-aliasing, and paste into 28x28 with the intensity centre of mass
   on pixel (14, 14), as MNIST does. An MNIST digit passes through unchanged.

The work is numpy's, torch's bilinear resampling included (lenet_cli/images/resample.py gives its
results bit for bit), so reading a digit never imports torch; `load_digit` and `load_digits` hand
the result over as a torch tensor for the code that trains and evaluates.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import ImageError
from lenet_cli.core.reading import MAX_IMAGE_BYTES, NotReadable, open_regular
from lenet_cli.images.image_ops import dilate, min_3x3, pad, resample, spread

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
DIGIT_BOX = 20  # MNIST digits fit a 20x20 box ...
CANVAS = 28  # ... centred by mass in 28x28
MNIST_STROKE = 2.5  # typical MNIST stroke width, in pixels of the 20-pixel box
MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)
TOO_LARGE = f"image is over the {MAX_PIXELS:,}-pixel limit (refused as a possible decompression bomb)"
# Larger images are worked on at about this size: JPEGs decoded at a reduced scale (Pillow's draft
# mode, which skips most of the decoding), others averaged down by an integer factor. A digit that
# ends up 20 pixels tall loses nothing that matters, and a 12 MP photo takes a fraction of a second.
WORKING_PIXELS = 2_000_000
BACKGROUND_GRID = 16  # cells of the background estimate along the longer side
PARALLEL_PIXELS = 250_000  # from this size up, many files are read by several threads
# From this size up the ink is located on every other pixel of every other row (a sample, not an average,
# so paper noise keeps its level); only the region around the digit is then worked on at full resolution.
SAMPLED_PIXELS = 250_000


Source = str | os.PathLike | bytes | bytearray  # a file's path, or an image file's bytes (stdin, an upload)


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


def read_digits(
    paths: list[Source], invert: str = "auto", show_progress: bool = False
) -> list[np.ndarray | ImageError]:
    """`read_digit` for many files, in order; a file that fails gives its ImageError in its place.

    Large images are read by one thread per core (numpy leaves the interpreter lock on whole-image
    work; about 1.6x on 2 cores for 1 MP files); small ones one after another, where threads would
    only contend for the interpreter. A tqdm bar on stderr when `show_progress` and on a terminal."""

    def one(path: Source) -> np.ndarray | ImageError:
        try:
            return read_digit(path, invert=invert)
        except ImageError as error:
            return error
        finally:
            bar.update()

    workers = _workers_for(paths)
    with _progress_bar(len(paths), show_progress) as bar:
        if workers == 1:
            return [one(path) for path in paths]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, paths))


def _progress_bar(total: int, show: bool) -> Any:
    """tqdm's bar on a terminal's stderr, else nothing (and tqdm, slow to import, is not imported)."""
    if not show or not sys.stderr.isatty():
        return contextlib.nullcontext(SimpleNamespace(update=lambda: None))
    from tqdm import tqdm

    return tqdm(total=total, desc="Reading images", unit="img", file=sys.stderr, leave=False)


def load_digits(
    paths: list[Source], invert: str = "auto", show_progress: bool = False
) -> list[torch.Tensor | ImageError]:
    """`read_digits` with each digit as a torch tensor."""
    import torch

    digits = read_digits(paths, invert=invert, show_progress=show_progress)
    return [digit if isinstance(digit, ImageError) else torch.from_numpy(digit) for digit in digits]


def available_cores() -> int:
    """The cores this process may use, or OMP_NUM_THREADS where that is set lower (as torch counts them)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def _workers_for(paths: list[Source], probe: int = 8) -> int:
    """Threads worth using: one per core when the first files are large (read from their headers)."""
    cores = available_cores()
    if cores < 2 or len(paths) < 4:
        return 1
    sizes = []
    for path in paths[:probe]:
        try:
            source = io.BytesIO(path) if isinstance(path, bytes) else open_regular(path, MAX_IMAGE_BYTES)
            with source, Image.open(source) as image:
                sizes.append(image.width * image.height)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            sizes.append(0)
    return cores if sorted(sizes)[len(sizes) // 2] >= PARALLEL_PIXELS else 1


def read_grey(path: Path) -> np.ndarray:
    """`decode_grey` of the regular file at `path` (anything else, or over MAX_IMAGE_BYTES, is refused)."""
    try:
        handle = open_regular(path, MAX_IMAGE_BYTES)
    except NotReadable as error:
        raise ImageError(str(error)) from None
    with handle:
        return decode_grey(handle)


def decode_grey(source: BinaryIO) -> np.ndarray:
    """Decode to grey levels, shape (H, W): uint8, or float32 in [0, 1] for 16/32-bit images and images
    averaged down to the working size. EXIF orientation applied, alpha over white."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # a damaged file's "Corrupt EXIF data" and the like: not the user's news
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                pixels = opened.width * opened.height
                if pixels > MAX_PIXELS:
                    raise ImageError(TOO_LARGE)
                opened.seek(0)  # the first frame of an animation
                if pixels > WORKING_PIXELS and opened.format == "JPEG":
                    shrink = math.sqrt(pixels / WORKING_PIXELS)
                    opened.draft(opened.mode, (int(opened.width / shrink), int(opened.height / shrink)))
                image = ImageOps.exif_transpose(opened)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(TOO_LARGE) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"cannot decode image ({type(error).__name__})") from None
    return _working_size(_grey_levels(image))


def _working_size(grey: np.ndarray) -> np.ndarray:
    """Average images over twice WORKING_PIXELS down by an integer factor, to about that size."""
    height, width = grey.shape
    if height * width <= 2 * WORKING_PIXELS:
        return grey
    factor = math.isqrt(height * width // WORKING_PIXELS)
    cropped = _unit(grey[: height - height % factor, : width - width % factor])
    blocks = cropped.reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def _grey_levels(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit and 32-bit greys
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return scaled.astype(np.float32)
    if image.mode in ("RGBA", "LA", "PA", "P", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    grey = image if image.mode == "L" else image.convert("L")
    return np.array(grey)  # uint8: made float only where it is worked on


def _unit(levels: np.ndarray) -> np.ndarray:
    """Grey levels as float32 in [0, 1] (uint8 levels are divided by 255)."""
    return levels.astype(np.float32) / np.float32(255) if levels.dtype == np.uint8 else levels


def normalize_digit(grey: np.ndarray, invert: str = "auto") -> np.ndarray:
    """Grey levels (H, W), uint8 or float32 in [0, 1] -> uint8 (28, 28) in MNIST form, digit white on black."""
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    inverted = invert == "yes" or (invert == "auto" and _lower_median(_unit(_border(grey))) > 0.5)
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
        levels = _unit(levels)
        return np.float32(1.0) - levels if inverted else levels

    step = 2 if grey.size > SAMPLED_PIXELS else 1
    sample = ink_up(np.ascontiguousarray(grey[::step, ::step]) if step > 1 else grey)
    background = _background(sample)
    ink = np.maximum(sample - background, 0)
    peak = ink.max()
    if float(peak) < 0.08:
        raise ImageError("no digit found (the image is blank)")
    threshold = _otsu_threshold(ink / peak) * float(peak)
    # Paper grain and sensor noise: zero everything at or below the noise's 99th percentile, measured
    # away from the strokes (so anti-aliased stroke edges do not count as noise). The background is
    # then black as in MNIST, and the stroke-thickening below cannot grow noise.
    strongest = np.maximum(ink_up(_strongest_in_blocks(grey, inverted)) - background, 0) if step > 1 else ink
    near_ink = _near(strongest > threshold, 1 + max(ink.shape) // 50)
    noise = _noise_level(ink, ~near_ink)
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


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def _lower_median(values: np.ndarray) -> float:
    """The lower of the two middle values for an even count (as torch.median), not their mean."""
    middle = (len(values) - 1) // 2
    return float(np.partition(values, middle)[middle])


def _background(grey: np.ndarray) -> np.ndarray:
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


def _noise_level(ink: np.ndarray, paper: np.ndarray, sample: int = 200_000) -> float:
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


def _otsu_threshold(values: np.ndarray) -> float:
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


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
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
