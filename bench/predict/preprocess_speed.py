"""How fast an image file becomes the 28x28 MNIST form, against Pillow decoding the same file.

    python bench/predict/preprocess_speed.py [--repeats 15]

For each input (a 28x28 MNIST-form PNG; a 1 MP drawing as a paint program saves it, two tones that
PNG decodes unusually fast; the same drawing photographed, with uneven light and paper noise, grey
and in colour as PNG and JPEG; a 12 MP photo-like JPEG), both timings
alternate in one process so both see the same machine noise; the figure that matters is the ratio
`load_digit / decode`. Then a folder of many 1 MP files
through `load_digits`, which uses both cores.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit, photo_like  # noqa: E402
from PIL import Image  # noqa: E402

from lenet_cli.images.many_files import load_digits  # noqa: E402
from lenet_cli.images.preprocess import load_digit  # noqa: E402


def make_inputs(folder: Path) -> dict[str, Path]:
    rng = random.Random(5)
    small = draw_digit(3, rng, canvas=(28, 28), height_range=(18, 20), pen_range=(2, 2))
    small.save(folder / "mnist-28x28.png")
    drawing = draw_digit(4, rng, canvas=(1150, 870), height_range=(300, 500), pen_range=(3, 6))
    drawing.save(folder / "drawing-1mp.png")
    photographed = photo_like(drawing, rng)
    photographed.save(folder / "photographed-1mp.png")
    tinted = [photo_like(drawing, rng) for _ in range(3)]  # colour: each channel its own noise
    Image.merge("RGB", tinted).save(folder / "colour-photo-1mp.png")
    Image.merge("RGB", tinted).save(folder / "colour-photo-1mp.jpg", quality=90)
    photo = photo_like(
        draw_digit(7, rng, canvas=(4000, 3000), height_range=(1200, 2000), pen_range=(18, 30)), rng
    )
    photo.save(folder / "photo-12mp.jpg", quality=90)
    return {
        "28x28 PNG": folder / "mnist-28x28.png",
        "1 MP drawing PNG": folder / "drawing-1mp.png",
        "1 MP photographed PNG": folder / "photographed-1mp.png",
        "1 MP colour photo PNG": folder / "colour-photo-1mp.png",
        "1 MP colour photo JPEG": folder / "colour-photo-1mp.jpg",
        "12 MP photo JPEG": folder / "photo-12mp.jpg",
    }


def decode(path: Path) -> None:
    with Image.open(path) as image:
        image.convert("L").load()


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--folder-size", type=int, default=60)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lenet-preprocess-"))
    inputs = make_inputs(scratch)
    print(f"{'input':<22} {'decode (Pillow)':>16} {'load_digit':>12} {'ratio':>7} {'images/s':>9}")
    for name, path in inputs.items():
        load_digit(path), decode(path)  # warm up
        decode_s, digit_s = [], []
        for _ in range(args.repeats):
            decode_s.append(timed(decode, path))
            digit_s.append(timed(load_digit, path))
        d, p = statistics.median(decode_s), statistics.median(digit_s)
        print(f"{name:<22} {d * 1000:>13.2f} ms {p * 1000:>9.2f} ms {p / d:>6.1f}x {1 / p:>9.1f}")

    paths = [inputs["1 MP photographed PNG"]] * args.folder_size
    one_by_one = timed(lambda: [load_digit(path) for path in paths])
    together = timed(load_digits, paths)
    print(
        f"{len(paths)} x 1 MP: one by one {len(paths) / one_by_one:.1f} img/s, "
        f"load_digits {len(paths) / together:.1f} img/s ({one_by_one / together:.2f}x)"
    )


if __name__ == "__main__":
    main()
