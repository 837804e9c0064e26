"""An image file -> its grey levels, safely: Pillow decodes it (EXIF orientation applied, alpha composited
over the paper, the first frame), refusing what is not a regular file, too many bytes or too many pixels;
a very large image is worked on at about WORKING_PIXELS."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lenet_cli.core.errors import ImageError
from lenet_cli.core.reading import MAX_IMAGE_BYTES, NotReadable, open_regular

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)
TOO_LARGE = f"image is over the {MAX_PIXELS:,}-pixel limit (refused as a possible decompression bomb)"
# Larger images are worked on at about this size: JPEGs decoded at a reduced scale (Pillow's draft
# mode, which skips most of the decoding), others averaged down by an integer factor. A digit that
# ends up 20 pixels tall loses nothing that matters.
WORKING_PIXELS = 2_000_000

Source = str | os.PathLike | bytes | bytearray  # a file's path, or an image file's bytes (stdin, an upload)


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
    return block_mean(grey, math.isqrt(height * width // WORKING_PIXELS))


def block_mean(grey: np.ndarray, factor: int) -> np.ndarray:
    """Grey levels averaged over `factor` x `factor` blocks (the last partial rows and columns dropped),
    float32 in [0, 1]: the one downscale by an integer factor."""
    height, width = grey.shape[0] // factor * factor, grey.shape[1] // factor * factor
    blocks = unit(grey[:height, :width]).reshape(height // factor, factor, width // factor, factor)
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


def unit(levels: np.ndarray) -> np.ndarray:
    """Grey levels as float32 in [0, 1] (uint8 levels are divided by 255)."""
    return levels.astype(np.float32) / np.float32(255) if levels.dtype == np.uint8 else levels
