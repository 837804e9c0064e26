"""Hand-drawn-style digits made with Pillow: thin pen strokes on large canvases, as people draw them.

Each digit is a pen path in a unit box (x right, y down); `draw_digit` jitters it, places it small
and off-centre on a big canvas and strokes it with a thin pen, dark on light by default.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFont


def arc(cx, cy, rx, ry, start_deg, end_deg, points=24):
    """Points along an ellipse; angles in degrees, 0 = right, 90 = down (image coordinates)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in (start_deg + (end_deg - start_deg) * i / (points - 1) for i in range(points))
    ]


TEMPLATES = {
    0: [arc(0.5, 0.5, 0.32, 0.46, -90, 275)],
    1: [[(0.38, 0.2), (0.55, 0.04), (0.55, 0.96)]],
    2: [arc(0.5, 0.3, 0.3, 0.25, 190, 380) + [(0.15, 0.95), (0.88, 0.95)]],
    3: [arc(0.48, 0.27, 0.3, 0.22, 200, 450) + arc(0.48, 0.72, 0.34, 0.25, -90, 150)],
    4: [[(0.62, 0.96), (0.62, 0.04), (0.12, 0.66), (0.9, 0.66)]],
    5: [[(0.82, 0.05), (0.28, 0.05), (0.24, 0.45)] + arc(0.5, 0.66, 0.32, 0.28, -140, 150)],
    6: [[(0.72, 0.04), (0.46, 0.2), (0.3, 0.4)] + arc(0.5, 0.7, 0.28, 0.26, 190, 540)],
    7: [[(0.12, 0.06), (0.88, 0.06), (0.42, 0.96)]],
    8: [arc(0.5, 0.27, 0.24, 0.22, 90, 450), arc(0.5, 0.72, 0.3, 0.25, -90, 270)],
    9: [arc(0.48, 0.3, 0.28, 0.26, 0, 360), [(0.76, 0.3), (0.7, 0.96)]],
}


def draw_digit(
    digit: int,
    rng: random.Random,
    canvas=(1000, 800),
    height_range=(150, 500),
    pen_range=(2, 6),
    ink=30,
    paper=245,
    mode="L",
) -> Image.Image:
    """A light canvas with `digit` drawn in a thin dark pen, small and off-centre."""
    width_px, height_px = canvas
    digit_h = rng.uniform(*height_range)
    digit_w = digit_h * rng.uniform(0.55, 0.75)
    left = rng.uniform(0.05 * width_px, width_px - digit_w - 0.05 * width_px)
    top = rng.uniform(0.05 * height_px, height_px - digit_h - 0.05 * height_px)
    slant = rng.uniform(-0.15, 0.15)
    wobble = 0.02
    image = Image.new("L", canvas, paper)
    pen = ImageDraw.Draw(image)
    width = rng.randint(*pen_range)
    for stroke in TEMPLATES[digit]:
        points = []
        for x, y in stroke:
            x += rng.uniform(-wobble, wobble) + slant * (0.5 - y)
            y += rng.uniform(-wobble, wobble)
            points.append((left + x * digit_w, top + y * digit_h))
        pen.line(points, fill=ink, width=width, joint="curve")
    return image.convert(mode) if mode != "L" else image


def photo_like(image: Image.Image, rng: random.Random) -> Image.Image:
    """Uneven lighting (a gradient across the sheet) and paper noise, as from a phone camera."""
    import numpy as np

    pixels = np.asarray(image, dtype=np.float32)
    height, width = pixels.shape
    ys, xs = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(40, 90)
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, pixels.shape)
    shaded = pixels * (1 - ramp / 255) - ramp * 0.3 + noise
    return Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8), mode="L")


def variant(image: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, dict]:
    """One of the ways users hand us drawings: returns the image and extra save() arguments."""
    if kind == "inverted":
        return Image.eval(image, lambda value: 255 - value), {}
    if kind == "alpha":  # ink on a transparent canvas, as paint programs export
        rgba = Image.new("RGBA", image.size, (0, 0, 0, 0))
        rgba.putalpha(Image.eval(image, lambda value: 255 - value))
        return rgba, {}
    if kind == "exif-rotated":  # stored sideways, with the EXIF tag that says how to turn it upright
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 clockwise to view"
        return image.transpose(Image.Transpose.ROTATE_90), {"exif": exif}
    if kind == "photo":
        return photo_like(image, rng), {"quality": 85}
    if kind == "colour":
        tinted = Image.merge(
            "RGB", (image, Image.eval(image, lambda v: v * 0.9), Image.eval(image, lambda v: v * 0.6))
        )
        return tinted, {}
    return image, {}


def draw_number(
    text: str,
    digit_height: int = 48,
    gap: float = 0.3,
    pen: int = 4,
    underline: bool = False,
    box: bool = False,
    ink: int = 30,
    paper: int = 240,
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A written number, dark on light: digits from TEMPLATES side by side `gap` digit heights apart
    (negative: overlapping), `.` and `,` low on the line, `-` a dash at mid height; optionally an
    underline touching the digits' feet and a printed box round the field. Returns the image and each
    digit's box (x, y, width, height) as drawn."""
    width_of = {".": 0.15, ",": 0.15, "-": 0.5}
    margin = digit_height // 2
    total = sum(width_of.get(char, 0.6) + gap for char in text) * digit_height
    canvas = Image.new("L", (int(total) + 2 * margin, digit_height + 2 * margin), paper)
    drawing = ImageDraw.Draw(canvas)
    top, x, boxes = margin, float(margin), []
    for char in text:
        w = width_of.get(char, 0.6) * digit_height
        if char in ".,":
            radius = max(2, pen // 2 + 1)
            cx, cy = x + radius, top + digit_height - radius
            drawing.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=ink)
            if char == ",":
                drawing.line([(cx, cy), (cx - radius, cy + 3 * radius)], fill=ink, width=pen)
        elif char == "-":
            drawing.line([(x, top + digit_height / 2), (x + w, top + digit_height / 2)], fill=ink, width=pen)
        else:
            for stroke in TEMPLATES[int(char)]:
                points = [(x + px * w, top + py * digit_height) for px, py in stroke]
                drawing.line(points, fill=ink, width=pen, joint="curve")
            boxes.append((int(x), top, int(w), digit_height))
        x += w + gap * digit_height
    if underline:
        y = top + digit_height + pen // 2
        drawing.line([(margin // 2, y), (canvas.width - margin // 2, y)], fill=ink, width=2)
    if box:
        drawing.rectangle([1, 1, canvas.width - 2, canvas.height - 2], outline=80, width=2)
    return canvas, boxes


def typed_digit(font_path, digit: int, rng: random.Random) -> Image.Image:
    """`digit` typed in the font at `font_path`, 120-420 px, somewhere on a 1000x800 grey canvas."""
    size = rng.randint(120, 420)
    font = ImageFont.truetype(str(font_path), size)
    canvas = Image.new("L", (1000, 800), 250)
    x, y = rng.randint(20, 1000 - size), rng.randint(0, 800 - int(size * 1.2))
    ImageDraw.Draw(canvas).text((x, y), str(digit), fill=20, font=font)
    return canvas
