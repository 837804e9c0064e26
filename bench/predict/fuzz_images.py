"""Fuzzing lenet's image reading: seeded mutations of real files of every supported kind.

Each mutation (bit flips, truncation, spliced or zeroed bytes, corrupted headers and dimensions) goes
through `load_digit`, the path every `predict`, `evaluate --images` and `train --images` image takes.
Each must give a 28x28 digit or an ImageError (an error row): never another exception, a hang or a crash.
tests/test_fuzz.py runs a few hundred; this script runs thousands and reports what came out.

    python bench/predict/fuzz_images.py --count 5000 --seed 0
"""

from __future__ import annotations

import argparse
import collections
import io
import random
import time

from PIL import Image, ImageDraw

from lenet_cli.core.errors import ImageError
from lenet_cli.images.preprocess import load_digit

# (format, Pillow mode) for every kind of file lenet reads.
KINDS = [
    ("PNG", "L"),
    ("PNG", "RGB"),
    ("PNG", "RGBA"),
    ("PNG", "P"),
    ("PNG", "I;16"),
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("GIF", "P"),
    ("BMP", "RGB"),
    ("TIFF", "L"),
    ("TIFF", "RGB"),
    ("WEBP", "RGB"),
    ("PPM", "L"),
    ("PPM", "RGB"),
    ("PPM", "1"),
]


def base_files(size: int = 48) -> list[tuple[str, bytes]]:
    """A dark 7 on light paper, saved once in each kind."""
    drawing = Image.new("L", (size, size), 235)
    pen = ImageDraw.Draw(drawing)
    pen.line(
        [(size * 0.25, size * 0.2), (size * 0.75, size * 0.2), (size * 0.4, size * 0.85)], fill=20, width=4
    )
    files = []
    for image_format, mode in KINDS:
        image = (
            drawing.convert(mode) if mode != "I;16" else drawing.point(lambda v: v * 257, "I").convert("I;16")
        )
        buffer = io.BytesIO()
        image.save(buffer, format=image_format)
        files.append((f"{image_format.lower()}-{mode}", buffer.getvalue()))
    return files


def mutate(data: bytes, donor: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded damage to `data` (`donor` is another file to splice from)."""
    kind = rng.choice(["bitflip", "truncate", "splice", "zeros", "header", "dimensions"])
    buffer = bytearray(data)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 16)):
            position = rng.randrange(len(buffer))
            buffer[position] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buffer[rng.randrange(len(buffer)) :]
    elif kind == "splice":
        start, length = rng.randrange(len(donor)), rng.randint(1, 256)
        position = rng.randrange(len(buffer))
        buffer[position:position] = donor[start : start + length]
    elif kind == "zeros":
        start = rng.randrange(len(buffer))
        buffer[start : start + rng.randint(1, 64)] = bytes(min(64, len(buffer) - start))
    elif kind == "header":
        for _ in range(rng.randint(1, 6)):
            buffer[rng.randrange(min(64, len(buffer)))] = rng.randrange(256)
    else:  # width/height-like fields: large or zero values in the first 32 bytes
        position = rng.randrange(min(28, len(buffer) - 4))
        buffer[position : position + 4] = rng.choice(
            [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x00\x7f\xff"]
        )
    return kind, bytes(buffer)


def fuzz(count: int, seed: int) -> collections.Counter:
    """Run `count` mutations; return a count of outcomes ("digit", or the ImageError's text). Any other
    exception propagates, naming the case."""
    rng = random.Random(seed)
    files = base_files()
    outcomes: collections.Counter = collections.Counter()
    for case in range(count):
        (name, data), (_, donor) = rng.choice(files), rng.choice(files)
        kind, mutated = mutate(data, donor, rng)
        try:
            digit = load_digit(mutated)
        except ImageError as error:
            outcomes[f"error: {error}"] += 1
            continue
        except Exception as error:
            raise AssertionError(
                f"case {case} ({name}, {kind}, seed {seed}): {type(error).__name__}: {error}"
            ) from error
        assert tuple(digit.shape) == (28, 28), f"case {case} ({name}, {kind}): shape {tuple(digit.shape)}"
        outcomes["digit"] += 1
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    outcomes = fuzz(args.count, args.seed)
    seconds = time.perf_counter() - started
    print(
        f"{args.count:,} mutated files of {len(KINDS)} kinds, seed {args.seed}: {seconds:.1f} s "
        f"({seconds / args.count * 1000:.2f} ms each), no exception other than ImageError, no hang"
    )
    for outcome, number in outcomes.most_common():
        print(f"  {number:6,}  {outcome}")


if __name__ == "__main__":
    main()
