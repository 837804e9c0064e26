"""Any image file -> the 28x28 MNIST form the network was trained on.

MNIST's own recipe: grey levels, bright digit on black, the ink's bounding box scaled so its longer
side is 20 pixels, pasted into 28x28 with the intensity centre of mass at the centre.
Pillow decodes every format; torch does the arithmetic.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lenet_cli.errors import ImageError

INVERT_CHOICES = ("auto", "yes", "no")
DIGIT_BOX = 20  # MNIST digits fit a 20x20 box ...
CANVAS = 28  # ... centred by mass in 28x28


def load_digit(path: str | os.PathLike, invert: str = "auto") -> torch.Tensor:
    """Read `path` and return the digit as MNIST sees it: uint8 (28, 28), white on black."""
    grey = _read_grey(Path(path))
    return normalize_digit(grey, invert=invert, source=str(path))


def _read_grey(path: Path) -> torch.Tensor:
    """Decode to float grey levels in [0, 1] (H, W): EXIF orientation applied, alpha over white."""
    if not path.exists():
        raise ImageError("no such file")
    if path.is_dir():
        raise ImageError("is a folder")
    try:
        with Image.open(path) as opened:
            opened.seek(0)  # first frame of an animation
            image = ImageOps.exif_transpose(opened)
            image.load()
    except Image.DecompressionBombError:
        raise ImageError("image is too large (refused as a possible decompression bomb)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"cannot decode image ({type(error).__name__})") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = torch.tensor(list(image.getdata()), dtype=torch.float64).reshape(image.height, image.width)
        top = float(values.max()) or 1.0
        return (values / top).to(torch.float32)
    if image.mode in ("RGBA", "LA", "PA", "P") or "transparency" in image.info:
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    grey = image.convert("L")
    data = torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8)
    return data.reshape(grey.height, grey.width).to(torch.float32) / 255


def normalize_digit(grey: torch.Tensor, invert: str = "auto", source: str = "image") -> torch.Tensor:
    """Grey levels (H, W) in [0, 1] -> uint8 (28, 28) in MNIST form."""
    if invert == "yes" or (invert == "auto" and _background_is_light(grey)):
        grey = 1.0 - grey
    grey = grey - _background_level(grey)
    grey = grey.clamp(min=0)
    ink = grey > _otsu_threshold(grey)
    if grey.max() < 0.1 or not ink.any():
        raise ImageError("no digit found (the image is blank)")
    rows, cols = ink.any(dim=1).nonzero(), ink.any(dim=0).nonzero()
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    digit = grey[top:bottom, left:right]
    digit = digit / digit.max()
    height, width = digit.shape
    scale = DIGIT_BOX / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = torch.nn.functional.interpolate(
        digit[None, None], size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
    )[0, 0]
    if resized.max() > 0:
        resized = resized / resized.max()
    return _center_by_mass(resized)


def _background_is_light(grey: torch.Tensor) -> bool:
    border = torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(border.median()) > 0.5


def _background_level(grey: torch.Tensor) -> float:
    border = torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(border.median())


def _otsu_threshold(grey: torch.Tensor) -> float:
    """Otsu's threshold over 256 bins: used only to locate the ink, never to binarise the image."""
    histogram = torch.histc(grey, bins=256, min=0.0, max=1.0).double()
    levels = torch.linspace(0, 1, 256, dtype=torch.float64)
    weight_low = histogram.cumsum(0)
    weight_high = histogram.sum() - weight_low
    mass_low = (histogram * levels).cumsum(0)
    mean_low = mass_low / weight_low.clamp(min=1e-12)
    mean_high = (mass_low[-1] - mass_low) / weight_high.clamp(min=1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(levels[int(between.argmax())])


def _center_by_mass(digit: torch.Tensor) -> torch.Tensor:
    """Paste `digit` (h, w <= 20) into 28x28 so its intensity centre of mass is at the centre."""
    height, width = digit.shape
    total = digit.sum()
    row_mass = (digit.sum(dim=1) * torch.arange(height)).sum() / total
    col_mass = (digit.sum(dim=0) * torch.arange(width)).sum() / total
    top = int(round(CANVAS / 2 - 0.5 - float(row_mass)))
    left = int(round(CANVAS / 2 - 0.5 - float(col_mass)))
    top = min(max(top, 0), CANVAS - height)
    left = min(max(left, 0), CANVAS - width)
    canvas = torch.zeros(CANVAS, CANVAS)
    canvas[top : top + height, left : left + width] = digit
    return (canvas * 255).round().clamp(0, 255).to(torch.uint8)
