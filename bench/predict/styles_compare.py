"""The model lenet shipped before `--styles` against the one trained with it, side by side.

    git show dbb2664:lenet_cli/pretrained/lenet5-mnist.pt > /tmp/old.pt
    python bench/predict/styles_compare.py /tmp/old.pt lenet_cli/formats/pretrained/lenet5-mnist.pt \\
        --data-dir ../shared/data/mnist --photos ../shared/data/handwriting --sheet docs/styles_misreads.png

1. MNIST test (the 10,000 tensors, as `lenet evaluate`).
2. Photographed handwriting (`<digit>/<digit>-<id>.png`, a few people's): predicted from the files, as
   `lenet predict` reads them. Split by file, per class: the half with the lower ids is the *tuning* part
   (the recipe's choices were made looking at it), the half with the higher ids the *scored* part (looked
   at only to report). The ids run in the order the sheets were cut, so the halves are mostly different
   sheets. No photo is ever trained on.
3. bench/predict/predict_accuracy.py's drawn digits (six kinds, 50 each, seed 2026) and typed digits (DejaVu Sans),
   the same files for both models.
4. A contact sheet of what the second model still misreads (scored photos, drawn, typed): the 28x28
   input it saw, with "true>read" under each.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: drawing.py, tutorial.py
from drawing import draw_digit, typed_digit, variant  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from lenet_cli.data.datasets import load_split  # noqa: E402
from lenet_cli.formats.checkpoint import load_model  # noqa: E402
from lenet_cli.inference.evaluate import evaluate  # noqa: E402
from lenet_cli.inference.predict import predict_files  # noqa: E402

KINDS = ("plain", "inverted", "alpha", "exif-rotated", "photo", "colour")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def photo_split(folder: Path) -> dict[str, list[tuple[Path, int]]]:
    """{"tune": [...], "scored": [...]}: per class, the lower-id half and the higher-id half."""
    parts: dict[str, list[tuple[Path, int]]] = {"tune": [], "scored": []}
    for label in range(10):
        files = sorted((folder / str(label)).glob("*.png"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
        half = len(files) // 2
        parts["tune"] += [(path, label) for path in files[:half]]
        parts["scored"] += [(path, label) for path in files[half:]]
    return parts


def drawn_and_typed(scratch: Path, seed: int, per_kind: int) -> dict[str, list[tuple[Path, int]]]:
    """The files of bench/predict/predict_accuracy.py's drawn and typed sets, made the same way."""
    rng = random.Random(seed)
    sets: dict[str, list[tuple[Path, int]]] = {"drawn": [], "typed": []}
    for kind in KINDS:
        (scratch / kind).mkdir()
        for index in range(per_kind):
            digit = index % 10
            image, save_args = variant(draw_digit(digit, rng), kind, rng)
            path = scratch / kind / f"{index:03d}.{'jpg' if kind == 'photo' else 'png'}"
            image.save(path, **save_args)
            sets["drawn"].append((path, digit))
    fonts = sorted(DEJAVU.glob("DejaVuSans*.ttf")) if DEJAVU.is_dir() else []
    (scratch / "typed").mkdir()
    for font_path in fonts:
        for digit in range(10):
            canvas = typed_digit(font_path, digit, rng)
            path = scratch / "typed" / f"{font_path.stem}-{digit}.png"
            canvas.save(path)
            sets["typed"].append((path, digit))
    return sets


def read_all(model, files: list[tuple[Path, int]]) -> list[tuple[Path, int, int, torch.Tensor]]:
    """(path, true label, predicted label, the 28x28 input) for each file."""
    predictions = predict_files(model, [path for path, _ in files])
    truth = {str(path): label for path, label in files}
    return [(Path(p.path), truth[p.path], p.label, p.seen) for p in predictions]


def misread_sheet(misreads: list[tuple[str, int, int, torch.Tensor]], path: Path, columns: int = 16) -> None:
    zoom, label_h = 3, 14
    cell_w, cell_h = 28 * zoom + 4, 28 * zoom + label_h + 4
    rows = max(1, -(-len(misreads) // columns))
    sheet = Image.new("L", (columns * cell_w, rows * cell_h + 18), 70)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    draw.text(
        (4, 2),
        f"{len(misreads)} misreads (true>read), by set: P photo, D drawn, T typed",
        fill=255,
        font=font,
    )
    for i, (where, true, read, seen) in enumerate(misreads):
        x, y = (i % columns) * cell_w, 18 + (i // columns) * cell_h
        sheet.paste(
            Image.fromarray(np.asarray(seen)).resize((28 * zoom, 28 * zoom), Image.NEAREST), (x + 2, y + 2)
        )
        draw.text((x + 4, y + 28 * zoom + 3), f"{where} {true}>{read}", fill=255, font=font)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs=2, metavar="CHECKPOINT", help="the old model, then the new")
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/handwriting"))
    parser.add_argument("--drawn", type=int, default=50, help="drawn digits per kind")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--sheet", type=Path, help="write the new model's misreads here (PNG)")
    parser.add_argument(
        "--tune-only", action="store_true", help="only the photos' tuning part (while tuning)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = [load_model(path)[0] for path in args.models]
    test = load_split("mnist", args.data_dir, "test")
    photos = photo_split(args.photos)
    sets = {"photos, tuning part": photos["tune"]}
    if not args.tune_only:
        sets["photos, scored part"] = photos["scored"]
        sets.update(drawn_and_typed(Path(tempfile.mkdtemp(prefix="lenet-styles-")), args.seed, args.drawn))
    names = [Path(path).name if Path(path).name != "lenet5-mnist.pt" else str(path) for path in args.models]
    print(f"{'':24} {'old: ' + args.models[0]:>36} {'new: ' + args.models[1]:>44}")
    mnist = [evaluate(model, test).accuracy for model in models]
    print(f"{'MNIST test (10,000)':24} {mnist[0]:>36.2%} {mnist[1]:>44.2%}")
    misreads = []
    for name, files in sets.items():
        results = [read_all(model, files) for model in models]
        scores = [sum(true == read for _, true, read, _ in result) / len(result) for result in results]
        print(f"{name + f' ({len(files)})':24} {scores[0]:>36.2%} {scores[1]:>44.2%}")
        if name != "photos, tuning part":
            tag = name[0].upper()
            misreads += [(tag, true, read, seen) for _, true, read, seen in results[1] if true != read]
    del names
    if args.sheet:
        misread_sheet(misreads, args.sheet)
        print(f"wrote {args.sheet} ({len(misreads)} misreads of the new model)")


if __name__ == "__main__":
    main()
