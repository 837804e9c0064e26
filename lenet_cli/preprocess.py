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
"""

from __future__ import annotations

import io
import math
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from lenet_cli.config import INVERT_CHOICES
from lenet_cli.errors import ImageError
from lenet_cli.reading import MAX_IMAGE_BYTES, NotReadable, open_regular

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


Source = str | os.PathLike | bytes  # a file's path, or an image file's bytes (standard input, an upload)


def load_digit(source: Source, invert: str = "auto") -> torch.Tensor:
    """Read an image file (a path, or its bytes) and return the digit as MNIST sees it: uint8 (28, 28),
    white on black."""
    grey = decode_grey(io.BytesIO(source)) if isinstance(source, bytes) else read_grey(Path(source))
    return normalize_digit(grey, invert=invert)


def load_digits(
    paths: list[Source], invert: str = "auto", show_progress: bool = False
) -> list[torch.Tensor | ImageError]:
    """`load_digit` for many files, in order; a file that fails gives its ImageError in its place.

    Large images are read by one thread per core, each running torch on one thread (about 1.25x on
    2 cores for 1 MP files); small ones one after another, where threads would only contend for the
    interpreter. A tqdm bar on stderr when `show_progress` and on a terminal."""
    from tqdm import tqdm

    def one(path: Source) -> torch.Tensor | ImageError:
        try:
            return load_digit(path, invert=invert)
        except ImageError as error:
            return error
        finally:
            bar.update()

    workers = _workers_for(paths)
    bar = tqdm(total=len(paths), desc="Reading images", unit="img", file=sys.stderr, leave=False,
               disable=None if show_progress else True)  # fmt: skip
    with bar:
        if workers == 1:
            return [one(path) for path in paths]
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(one, paths))
        finally:
            torch.set_num_threads(torch_threads)


def _workers_for(paths: list[Source], probe: int = 8) -> int:
    """Threads worth using: one per core when the first files are large (read from their headers)."""
    cores = torch.get_num_threads()
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


def read_grey(path: Path) -> torch.Tensor:
    """`decode_grey` of the regular file at `path` (anything else, or over MAX_IMAGE_BYTES, is refused)."""
    try:
        handle = open_regular(path, MAX_IMAGE_BYTES)
    except NotReadable as error:
        raise ImageError(str(error)) from None
    with handle:
        return decode_grey(handle)


def decode_grey(source: BinaryIO) -> torch.Tensor:
    """Decode to grey levels, shape (H, W): uint8, or float in [0, 1] for 16/32-bit images and images
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


def _working_size(grey: torch.Tensor) -> torch.Tensor:
    """Average images over twice WORKING_PIXELS down by an integer factor, to about that size."""
    height, width = grey.shape
    if height * width <= 2 * WORKING_PIXELS:
        return grey
    factor = math.isqrt(height * width // WORKING_PIXELS)
    cropped = _unit(grey[: height - height % factor, : width - width % factor])
    return F.avg_pool2d(cropped[None, None], factor)[0, 0]


def _grey_levels(image: Image.Image) -> torch.Tensor:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit and 32-bit greys
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return torch.from_numpy(scaled.astype(np.float32))
    if image.mode in ("RGBA", "LA", "PA", "P", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return torch.from_numpy(np.array(image.convert("L")))  # uint8: made float only where it is worked on


def _unit(levels: torch.Tensor) -> torch.Tensor:
    """Grey levels as float32 in [0, 1] (uint8 levels are divided by 255)."""
    return levels.to(torch.float32).div_(255) if levels.dtype == torch.uint8 else levels


def normalize_digit(grey: torch.Tensor, invert: str = "auto") -> torch.Tensor:
    """Grey levels (H, W), uint8 or float in [0, 1] -> uint8 (28, 28) in MNIST form, digit white on black."""
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    inverted = invert == "yes" or (invert == "auto" and _unit(_border(grey)).median() > 0.5)
    digit, mask = _crop_to_ink(grey, inverted)
    digit = digit / digit.max()
    scale = DIGIT_BOX / max(digit.shape)
    digit = _thicken(digit, mask, scale)
    height, width = digit.shape
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = F.interpolate(digit[None, None], size=new_size, mode="bilinear", antialias=True)[0, 0]
    resized = (resized / resized.max()).clamp(0, 1)
    return _center_by_mass(resized)


def _crop_to_ink(grey: torch.Tensor, inverted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The digit's ink (background and paper noise removed) cropped to it, and its Otsu mask.

    On a large image the statistics (background, threshold, noise floor) come from a sample of every
    other pixel of every other row, which keeps the paper's noise as it is, and the geometry (where
    the ink is) from 2x2 blocks' strongest ink, which no stroke can slip between; only the region
    around the digit is then worked on at full resolution. Only what is worked on is made float and,
    for dark ink on light paper, inverted.
    """

    def ink_up(levels: torch.Tensor) -> torch.Tensor:
        levels = _unit(levels)
        return 1.0 - levels if inverted else levels

    step = 2 if grey.numel() > SAMPLED_PIXELS else 1
    sample = ink_up(grey[::step, ::step].contiguous() if step > 1 else grey)
    background = _background(sample)
    ink = (sample - background).clamp(min=0)
    if float(ink.max()) < 0.08:
        raise ImageError("no digit found (the image is blank)")
    threshold = _otsu_threshold(ink / ink.max()) * float(ink.max())
    # Paper grain and sensor noise: zero everything at or below the noise's 99th percentile, measured
    # away from the strokes (so anti-aliased stroke edges do not count as noise). The background is
    # then black as in MNIST, and the stroke-thickening below cannot grow noise.
    strongest = (ink_up(_strongest_in_blocks(grey, inverted)) - background).clamp(min=0) if step > 1 else ink
    near_ink = _near(strongest > threshold, 1 + max(ink.shape) // 50)
    noise = _noise_level(ink, ~near_ink)
    ink = strongest
    # The crop keeps the faint edges of strokes, as MNIST's boxes do, but not specks far from them.
    top, bottom, left, right = _extent((ink - noise > 0) & near_ink)
    if step > 1:  # back to full resolution, around the digit only
        rows = slice(top * step, min(grey.shape[0], bottom * step))
        cols = slice(left * step, min(grey.shape[1], right * step))
        size = (rows.stop - rows.start, cols.stop - cols.start)
        background = F.interpolate(
            background[None, None, top:bottom, left:right], size=size, mode="bilinear", align_corners=False
        )[0, 0]
        near_ink = _spread(near_ink[top:bottom, left:right], step, size)
        ink = (ink_up(grey[rows, cols]) - background).clamp(min=0)
        top, bottom, left, right = _extent((ink - noise > 0) & near_ink)
    mask = ink[top:bottom, left:right] > threshold
    return (ink[top:bottom, left:right] - noise).clamp(min=0), mask


def _strongest_in_blocks(grey: torch.Tensor, inverted: bool) -> torch.Tensor:
    """Each 2x2 block's strongest ink (the darkest level for dark ink, else the brightest), the
    same size as grey[::2, ::2]."""
    height, width = grey.shape
    paper = (255 if grey.dtype == torch.uint8 else 1.0) if inverted else 0
    padded = F.pad(grey, (0, width % 2, 0, height % 2), value=paper)
    strongest = torch.minimum if inverted else torch.maximum
    rows = strongest(padded[0::2], padded[1::2])
    return strongest(rows[:, 0::2], rows[:, 1::2])


def _extent(where: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the True pixels."""
    rows, cols = where.any(dim=1).nonzero(), where.any(dim=0).nonzero()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _border(grey: torch.Tensor) -> torch.Tensor:
    return torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def _background(grey: torch.Tensor) -> torch.Tensor:
    """A smooth estimate of the (dark) background under the digit, for uneven lighting.

    Each cell of a coarse grid takes its lower quartile (paper, unless ink covers three quarters of
    it); a cell full of ink takes its darkest neighbour's; bilinear interpolation joins the cells.
    """
    height, width = grey.shape
    cell = max(4, math.ceil(max(height, width) / BACKGROUND_GRID))
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    padded = F.pad(grey[None, None], (0, cols * cell - width, 0, rows * cell - height), mode="replicate")[
        0, 0
    ]
    step = 2 if cell >= 16 else 1  # in large cells every other row and column is sample enough
    blocks = padded.reshape(rows, cell, cols, cell)[:, ::step, :, ::step].permute(0, 2, 1, 3)
    blocks = blocks.reshape(rows, cols, -1)
    quartile = blocks.kthvalue(max(1, blocks.shape[-1] // 4), dim=-1).values
    quartile = -F.max_pool2d(-quartile[None, None], 3, stride=1, padding=1)
    smooth = F.interpolate(quartile, size=(rows * cell, cols * cell), mode="bilinear", align_corners=False)
    return smooth[0, 0, :height, :width]


def _noise_level(ink: torch.Tensor, paper: torch.Tensor, sample: int = 200_000) -> float:
    """The 99th percentile of `ink` where `paper` is set, from an even sample of about `sample` pixels."""
    step = max(1, ink.numel() // sample)
    values = ink.flatten()[::step][paper.flatten()[::step]]
    if values.numel() == 0:
        return 0.0
    # torch.quantile's linear interpolation between the two order statistics around the 99th
    # percentile, taken from the top 1% (a partial sort) rather than a sort of everything.
    position = 0.99 * (len(values) - 1)
    below = int(math.floor(position))
    top = values.topk(len(values) - below).values  # descending; the last two are ranks below, below+1
    low = top[-1]
    high = top[-2] if len(top) > 1 else low
    return float(low + (high - low) * (position - below))


def _otsu_threshold(values: torch.Tensor) -> float:
    """Otsu's threshold over 256 bins of values in [0, 1]."""
    histogram = torch.histc(values, bins=256, min=0.0, max=1.0).double()
    levels = (torch.arange(256, dtype=torch.float64) + 0.5) / 256  # bin centres
    weight_low = histogram.cumsum(0)
    weight_high = histogram.sum() - weight_low
    mass_low = (histogram * levels).cumsum(0)
    mean_low = mass_low / weight_low.clamp(min=1e-12)
    mean_high = (mass_low[-1] - mass_low) / weight_high.clamp(min=1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    # Split above the bin (not at its lower edge), in the middle of a plateau of equally good splits:
    # a clean two-tone image has one, and its first bin holds rounding residue, not ink.
    best = (between >= between.max() * (1 - 1e-9)).nonzero().double().mean()
    return float((best + 1) / 256)


def _thicken(digit: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """Dilate strokes thinner than MNIST's, measured at the size they will be shrunk to.

    Stroke width is estimated as 2 * area / boundary of the ink mask (exact for long strokes).
    """
    area = float(mask.sum())
    padded = F.pad(mask[None, None].float(), (1, 1, 1, 1))
    eroded = -F.max_pool2d(-padded, 3, stride=1)[0, 0]
    boundary = max(float((mask.float() - eroded).clamp(min=0).sum()), 1.0)
    stroke = 2 * area / boundary
    wanted = MNIST_STROKE / scale  # in source pixels
    grow = int(round((wanted - stroke) / 2))
    if grow < 1:
        return digit
    return _dilate(digit, grow)


def _near(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within about `radius` of the mask (all within `radius`, none beyond about 1.5x): the
    dilation is done on blocks of a quarter of the radius, then spread back to every pixel."""
    block = max(1, radius // 4)
    if block == 1:
        return _dilate(mask.float(), radius) > 0
    blocks = F.max_pool2d(mask[None, None].float(), block, ceil_mode=True)[0, 0]
    return _spread(_dilate(blocks, math.ceil(radius / block)) > 0, block, mask.shape)


def _spread(blocks: torch.Tensor, size: int, shape: tuple[int, int]) -> torch.Tensor:
    """Each value of `blocks` repeated over its size x size pixels, cut to `shape`."""
    pixels = blocks.repeat_interleave(size, dim=0).repeat_interleave(size, dim=1)
    return pixels[: shape[0], : shape[1]]


def _dilate(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey-level dilation of a non-negative image by a (2r+1)-square: equal to max-pooling, but a
    running max along rows, then columns, each in O(log r) vectorised passes whatever r."""
    if radius < 1:
        return image
    return _running_max(_running_max(image, radius, dim=1), radius, dim=0)


def _running_max(image: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """The max over each window [x - r, x + r] along `dim` (zero padding: the image is non-negative).

    Doubling: after k passes each value is the max of 2^k neighbours; two such overlapping spans
    then cover the window exactly."""
    length = image.shape[dim]
    size = 2 * radius + 1
    padding = (radius, radius) if dim == 1 else (0, 0, radius, radius)
    current, span = F.pad(image, padding), 1
    while 2 * span <= size:
        current = torch.maximum(
            current.narrow(dim, 0, current.shape[dim] - span),
            current.narrow(dim, span, current.shape[dim] - span),
        )
        span *= 2
    return torch.maximum(current.narrow(dim, 0, length), current.narrow(dim, size - span, length))


def _center_by_mass(digit: torch.Tensor) -> torch.Tensor:
    """Paste `digit` (h, w <= 20) into 28x28 with its intensity centre of mass on pixel (14, 14)."""
    height, width = digit.shape
    total = digit.sum()
    row_mass = float((digit.sum(dim=1) * torch.arange(height)).sum() / total)
    col_mass = float((digit.sum(dim=0) * torch.arange(width)).sum() / total)
    top = min(max(round(CANVAS / 2 - row_mass), 0), CANVAS - height)
    left = min(max(round(CANVAS / 2 - col_mass), 0), CANVAS - width)
    canvas = torch.zeros(CANVAS, CANVAS)
    canvas[top : top + height, left : left + width] = digit
    return (canvas * 255).round().clamp(0, 255).to(torch.uint8)


def save_png(image_u8: torch.Tensor, path: Path) -> None:
    Image.fromarray(image_u8.numpy(), mode="L").save(path)
