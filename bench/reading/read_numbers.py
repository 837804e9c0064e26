"""Whole numbers read by `lenet read`, Tesseract and RapidOCR, side by side on the same composed sets, and how
long lenet takes to read a 5-digit amount on one thread.

    python bench/reading/compose_numbers.py /tmp/numbers --count 200 --seed 2024
    python bench/reading/read_numbers.py /tmp/numbers [--checkpoint FILE] [--engines lenet,tesseract,rapidocr]

Each set is a folder with labels.csv (`file,label`), as compose_numbers.py writes them. Scores as the
ICFHR 2014 digit-string competition: exact match (the share of numbers read exactly) and ANLD (average
normalised edit distance). Every engine's output is reduced to its digits before scoring (separators
and dashes are not part of the label), so no engine loses for writing `12.345` for 12345.

- Tesseract: Debian's tesseract-ocr (5.3), one text line (`--psm 7`), digits only
  (`tessedit_char_whitelist=0123456789`), on the image files as they are (one process per set).
- RapidOCR: `pip install rapidocr-onnxruntime` (bench only, never a lenet dependency), recognition only
  (no detection, no angle classifier): the whole field is its text line.
- lenet: the reader of `lenet read`, with the model shipped for reading unless --checkpoint names another.

Speed: every 5-digit number of the sets read from its file's bytes (decode, clean-up, cuts, one forward
pass of all candidates, the best path), with torch on one thread; median and 90th percentile, and beside
it `lenet predict`'s path on the same files (measured alternately, so the ratio survives a busy machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import READER
from lenet_cli.images.preprocess import load_digit
from lenet_cli.inference.forward import predict_logits
from lenet_cli.inference.number_files import read_files
from lenet_cli.inference.number_metrics import normalised_distance
from lenet_cli.inference.numbers import read_source


def load_set(folder: Path) -> list[tuple[Path, str]]:
    with open(folder / "labels.csv", newline="") as handle:
        return [(folder / row["file"], row["label"]) for row in csv.DictReader(handle)]


def digits_only(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def read_with_lenet(model, paths: list[Path]) -> list[str]:
    return [reading.number or "" for reading in read_files(model, paths)]


def read_with_tesseract(paths: list[Path]) -> list[str]:
    """One tesseract process for the whole set (a list file; each image's text ends with a form feed):
    starting a process per image costs more than reading it."""
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "images.txt"
        listing.write_text("".join(f"{path}\n" for path in paths))
        command = [
            "tesseract",
            str(listing),
            "stdout",
            "--psm",
            "7",
            "-c",
            "tessedit_char_whitelist=0123456789",
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    pages = output.split("\f")[: len(paths)]
    if len(pages) != len(paths):
        raise SystemExit(f"tesseract gave {len(pages)} pages for {len(paths)} images")
    return [digits_only(page) for page in pages]


def read_with_rapidocr(paths: list[Path]) -> list[str]:
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()
    found = []
    for path in paths:
        result, _ = engine(str(path), use_det=False, use_cls=False, use_rec=True)
        found.append(digits_only("".join(text for text, _score in result or [])))
    return found


ENGINES = {"tesseract": read_with_tesseract, "rapidocr": read_with_rapidocr}


def score(labels: list[str], read: list[str]) -> dict[str, float]:
    exact = sum(label == got for label, got in zip(labels, read, strict=True))
    distance = sum(normalised_distance(label, got) for label, got in zip(labels, read, strict=True))
    return {"exact_match": exact / len(labels), "anld": distance / len(labels)}


def speed(model, pairs: list[tuple[Path, str]], most: int = 200) -> dict[str, float]:
    """Milliseconds to read each 5-digit number from its bytes, one thread; beside it, alternating image by
    image so both see the same load, what `lenet predict` takes for the same file (decode, the one-digit
    preprocessing, a forward pass of one): the ratio holds on a busy machine where times do not."""
    amounts = [path.read_bytes() for path, label in pairs if len(label) == 5][:most]
    for data in amounts[:5]:  # warm-up
        read_source(model, data, "auto", None)
        predict_logits(model, load_digit(data)[None])
    reading, predicting = [], []
    for data in amounts:
        start = time.perf_counter()
        read_source(model, data, "auto", None)
        middle = time.perf_counter()
        predict_logits(model, load_digit(data)[None])
        reading.append((middle - start) * 1000)
        predicting.append((time.perf_counter() - middle) * 1000)
    reading.sort()
    return {
        "numbers": len(reading),
        "median_ms": statistics.median(reading),
        "p90_ms": reading[int(0.9 * (len(reading) - 1))],
        "predict_same_file_median_ms": statistics.median(predicting),
        "ratio_to_predict": statistics.median(reading) / statistics.median(predicting),
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", type=Path, help="a folder of sets (each a folder with labels.csv)")
    parser.add_argument("--checkpoint", type=Path, default=READER)
    parser.add_argument(
        "--engines", default="lenet,tesseract,rapidocr", help="comma-separated; '' for speed only"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    engines = [name for name in args.engines.split(",") if name]
    if "tesseract" in engines and shutil.which("tesseract") is None:
        raise SystemExit(
            "tesseract is not installed (apt-get install tesseract-ocr), or leave it out: --engines"
        )
    model, _ = load_any_model(args.checkpoint, "cpu")
    folders = sorted(folder for folder in args.sets.iterdir() if (folder / "labels.csv").is_file())
    figures: dict[str, dict] = {}
    all_pairs = []
    if engines:
        print(
            f"{'set':12s} {'numbers':>7s}  " + "  ".join(f"{name + ' exact / ANLD':>24s}" for name in engines)
        )
    for folder in folders:
        pairs = load_set(folder)
        all_pairs += pairs
        if not engines:
            continue
        paths, labels = [path for path, _ in pairs], [label for _, label in pairs]
        row = {}
        for name in engines:
            read = read_with_lenet(model, paths) if name == "lenet" else ENGINES[name](paths)
            row[name] = score(labels, read)
        figures[folder.name] = {"numbers": len(pairs), **row}
        cells = "  ".join(f"{row[n]['exact_match']:>15.1%} / {row[n]['anld']:.3f}" for n in engines)
        print(f"{folder.name:12s} {len(pairs):7d}  {cells}", flush=True)
    figures["speed_5_digits"] = speed(model, all_pairs)
    timing = figures["speed_5_digits"]
    print(
        f"lenet read, a 5-digit number from its file's bytes, 1 thread: median {timing['median_ms']:.1f} ms, "
        f"90th percentile {timing['p90_ms']:.1f} ms ({timing['numbers']} numbers); lenet predict on the same "
        f"files {timing['predict_same_file_median_ms']:.1f} ms: {timing['ratio_to_predict']:.1f}x; "
        f"load average {timing['load_average_1min']:.1f}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
