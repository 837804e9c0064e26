"""Accuracy of `lenet predict`'s preprocessing on images as users give them.

    python bench/predict/predict_accuracy.py CHECKPOINT --data-dir ../shared/data/mnist [--drawn 50]

1. MNIST test images written out as PNG files and predicted through predict_files, against
   `evaluate` on the same tensors: the normalisation must not hurt digits that are already MNIST-like.
2. Hand-drawn-style digits (bench/drawing.py: thin pen strokes on 1000x800 canvases, small and
   off-centre) in each form users send: plain, inverted, transparent, EXIF-rotated, photo-like JPEG,
   colour. Drawn with a different random seed from the tests.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit, typed_digit, variant  # noqa: E402

from lenet_cli.data.datasets import load_split  # noqa: E402
from lenet_cli.formats.checkpoint import load_model  # noqa: E402
from lenet_cli.images.preprocess import save_png  # noqa: E402
from lenet_cli.inference.evaluate import evaluate  # noqa: E402
from lenet_cli.inference.predict import predict_files  # noqa: E402

KINDS = ("plain", "inverted", "alpha", "exif-rotated", "photo", "colour")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--mnist", type=int, default=10_000, help="how many MNIST test images")
    parser.add_argument("--drawn", type=int, default=50, help="drawn digits per kind")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    model, _ = load_model(args.checkpoint)
    scratch = Path(tempfile.mkdtemp(prefix="lenet-predict-"))

    test = load_split("mnist", args.data_dir, "test")
    count = min(args.mnist, len(test))
    subset = test.subset(range(count)) if count < len(test) else test
    tensor_accuracy = evaluate(model, subset).accuracy
    folder = scratch / "mnist"
    folder.mkdir()
    for index in range(count):
        save_png(subset.images[index], folder / f"{index:05d}.png")
    started = time.perf_counter()
    predictions = predict_files(model, [folder])
    seconds = time.perf_counter() - started
    correct = sum(p.label == int(subset.labels[int(Path(p.path).stem)]) for p in predictions)
    print(
        f"MNIST test as PNG ({count:,} files): predict {correct / count:.2%} vs evaluate {tensor_accuracy:.2%} "
        f"(difference {100 * (correct / count - tensor_accuracy):+.2f} points; {seconds:.1f}s)"
    )

    rng = random.Random(args.seed)
    overall = Counter()
    for kind in KINDS:
        folder = scratch / kind
        folder.mkdir()
        truth = {}
        for index in range(args.drawn):
            digit = index % 10
            image, save_args = variant(draw_digit(digit, rng), kind, rng)
            path = folder / f"{index:03d}.{'jpg' if kind == 'photo' else 'png'}"
            image.save(path, **save_args)
            truth[str(path)] = digit
        predictions = predict_files(model, [folder])
        right = sum(p.label == truth[p.path] for p in predictions)
        mistakes = Counter((truth[p.path], p.label) for p in predictions if p.label != truth[p.path])
        overall.update(right=right, total=len(predictions))
        print(
            f"drawn, {kind:>12}: {right}/{len(predictions)} = {right / len(predictions):.1%}  "
            f"mistakes (true, predicted): {dict(mistakes.most_common(5))}"
        )
    print(
        f"drawn, all kinds: {overall['right']}/{overall['total']} = {overall['right'] / overall['total']:.1%}"
    )
    typed_digits(model, scratch / "typed", rng)
    print(f"files kept in {scratch}")


FONTS = Path("/usr/share/fonts/truetype/dejavu")


def typed_digits(model, folder: Path, rng: random.Random) -> None:
    """Digits typed in the machine's fonts (thin ExtraLight strokes included), on large canvases:
    shapes that are not from bench/drawing.py's templates. Skipped where the fonts are absent."""

    fonts = sorted(FONTS.glob("DejaVuSans*.ttf")) if FONTS.is_dir() else []
    if not fonts:
        print("typed: no DejaVu fonts here, skipped")
        return
    folder.mkdir()
    truth = {}
    for font_path in fonts:
        for digit in range(10):
            canvas = typed_digit(font_path, digit, rng)
            path = folder / f"{font_path.stem}-{digit}.png"
            canvas.save(path)
            truth[str(path)] = digit
    predictions = predict_files(model, [folder])
    right = sum(p.label == truth[p.path] for p in predictions)
    mistakes = Counter((truth[p.path], p.label) for p in predictions if p.label != truth[p.path])
    print(
        f"typed in {len(fonts)} DejaVu Sans fonts: {right}/{len(predictions)} = {right / len(predictions):.1%}  "
        f"mistakes (true, predicted): {dict(mistakes.most_common(6))}"
    )


if __name__ == "__main__":
    main()
