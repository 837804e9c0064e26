"""Where models misread USPS's real ZIP-code digits: accuracy, the confusions and a sheet of the misreads.

    python bench/predict/usps_errors.py lenet_cli/formats/pretrained/lenet5-mnist.pt \\
        lenet_cli/formats/pretrained/lenet5-reader.pt --data-dir ../shared/data/usps --split train \\
        [--sheet /tmp/usps_misreads.png]

Each digit is read as `lenet evaluate --dataset usps` reads it (data/usps.py: the 16x16 digit put into
MNIST's form by predict's own normalize_digit), by numpy's LeNet-5. The train split (7,291 digits) is the
one to develop on; the test split (2,007) is the one the issue's goal is measured on, so measure it only
for a candidate you have already chosen. The sheet shows, for the first model's misreads, the 16x16
digit as USPS stores it (enlarged) beside the 28x28 input the model saw, with "true>read" under each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lenet_cli.data.usps import load_usps
from lenet_cli.inference.fast_predict import load_predict_model, read_checkpoint_record

ZOOM = 3
PER_ROW = 10
MOST_SHOWN = 100


def read_all(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    """The digit each image is read as (a reading model's "no digit" output is left out)."""
    model, _ = load_predict_model(checkpoint)
    logits = np.concatenate([model.logits(images[i : i + 500]) for i in range(0, len(images), 500)])
    return logits[:, :10].argmax(1)


def confusions(labels: np.ndarray, read: np.ndarray) -> np.ndarray:
    """(10, 10) counts of misreads: row the true digit, column what it was read as."""
    table = np.zeros((10, 10), int)
    np.add.at(table, (labels[read != labels], read[read != labels]), 1)
    return table


def report(checkpoint: Path, labels: np.ndarray, read: np.ndarray) -> None:
    table = confusions(labels, read)
    wrong = int(table.sum())
    mnist = read_checkpoint_record(checkpoint).get("metrics", {}).get("test_accuracy")
    pairs = sorted(((table[t, r], t, r) for t in range(10) for r in range(10) if table[t, r]), reverse=True)
    print(f"{checkpoint}: {1 - wrong / len(labels):.2%} ({wrong} of {len(labels)} misread)", end="")
    print(f", MNIST test {mnist:.2%}" if mnist else "")
    print(f"  misread by true digit: {table.sum(axis=1).tolist()}")
    print("  most often (true>read): " + ", ".join(f"{t}>{r} {n}" for n, t, r in pairs[:10]))


def sheet(raw: np.ndarray, inputs: np.ndarray, labels: np.ndarray, read: np.ndarray) -> Image.Image:
    """The misreads: USPS's 16x16 digit (enlarged) beside the 28x28 input, "true>read" under each."""
    wrong = np.flatnonzero(read != labels)[:MOST_SHOWN]
    side = 28 * ZOOM
    cell_w, cell_h = 2 * side + 8, side + 14
    rows = max(1, -(-len(wrong) // PER_ROW))
    picture = Image.new("L", (PER_ROW * cell_w, rows * cell_h), 110)
    draw = ImageDraw.Draw(picture)
    for k, index in enumerate(wrong):
        x, y = (k % PER_ROW) * cell_w, (k // PER_ROW) * cell_h
        picture.paste(Image.fromarray(raw[index]).resize((side, side), Image.NEAREST), (x, y))
        picture.paste(Image.fromarray(inputs[index]).resize((side, side), Image.NEAREST), (x + side + 2, y))
        draw.text((x + 2, y + side), f"{labels[index]}>{read[index]}", fill=255)
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--data-dir", default="../shared/data/usps")
    parser.add_argument("--split", choices=("train", "test"), default="train")
    parser.add_argument("--sheet", type=Path, help="write the first model's misreads here (PNG)")
    args = parser.parse_args()
    inputs, labels = (tensor.numpy() for tensor in load_usps(args.data_dir, args.split))
    readings = [read_all(checkpoint, inputs) for checkpoint in args.checkpoints]
    for checkpoint, read in zip(args.checkpoints, readings, strict=True):
        report(checkpoint, labels, read)
    if args.sheet:
        import torchvision.datasets

        from lenet_cli.data.usps import FILES, folder_with

        root = folder_with(Path(args.data_dir), FILES[args.split]) or Path(args.data_dir)
        raw = np.asarray(torchvision.datasets.USPS(str(root), train=args.split == "train").data, np.uint8)
        sheet(raw, inputs, labels, readings[0]).save(args.sheet)
        print(f"misreads of {args.checkpoints[0]}: {args.sheet}")


if __name__ == "__main__":
    main()
