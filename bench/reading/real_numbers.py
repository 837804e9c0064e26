"""Real written numbers read by `lenet read` (the shipped reader, without torch), RapidOCR (detection and
recognition) and Tesseract in the same run: exact match, ANLD and exact match by length, for each set.

    OMP_NUM_THREADS=1 python bench/reading/real_numbers.py ../shared/data/numbers/register-rows-validation \\
        /tmp/numbers/* [--engines lenet,rapidocr,tesseract] [--limit N] [--json OUT]

Each SET is a folder with its images and a labels.csv (`file,label`), the layout `lenet evaluate --numbers`
reads; the composed sets of bench/compose_numbers.py can be given beside the real ones. Every engine's
answer is reduced to its digits before scoring.

- lenet: `lenet read` as the command runs it (numpy's LeNet-5, the reader's model file read without torch).
- RapidOCR: `pip install rapidocr-onnxruntime==1.4.4` (bench only, never a lenet dependency), out of the
  box: text detection, then recognition of each line found; the digits of every line, in its order.
- Tesseract: Debian's tesseract-ocr, one text line (`--psm 7`), digits only (bench/read_numbers.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from read_numbers import digits_only, load_set, read_with_tesseract  # noqa: E402

from lenet_cli.formats.shipped import READER  # noqa: E402
from lenet_cli.inference.fast_predict import load_predict_model  # noqa: E402
from lenet_cli.inference.number_files import read_files  # noqa: E402
from lenet_cli.inference.number_metrics import normalised_distance  # noqa: E402


def read_with_lenet(paths: list[Path]) -> list[str]:
    model, _ = load_predict_model(READER)
    return [reading.number or "" for reading in read_files(model, paths)]


def read_with_rapidocr_detecting(paths: list[Path]) -> list[str]:
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()
    found = []
    for path in paths:
        result, _ = engine(str(path))
        found.append(digits_only("".join(line[1] for line in result or [])))
    return found


ENGINES = {
    "lenet": read_with_lenet,
    "rapidocr": read_with_rapidocr_detecting,
    "tesseract": read_with_tesseract,
}


def score(labels: list[str], read: list[str]) -> dict:
    pairs = list(zip(labels, read, strict=True))
    by_length: dict[int, list[bool]] = collections.defaultdict(list)
    for label, got in pairs:
        by_length[len(label)].append(label == got)
    return {
        "exact_match": sum(label == got for label, got in pairs) / len(pairs),
        "anld": sum(normalised_distance(label, got) for label, got in pairs) / len(pairs),
        "exact_by_length": {length: sum(hits) / len(hits) for length, hits in sorted(by_length.items())},
        "length_right": sum(len(label) == len(got) for label, got in pairs) / len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", type=Path, nargs="+", help="folders with images and labels.csv")
    parser.add_argument("--engines", default="lenet,rapidocr,tesseract")
    parser.add_argument("--limit", type=int, help="only the first N numbers of each set")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    engines = [name for name in args.engines.split(",") if name]
    if "tesseract" in engines and shutil.which("tesseract") is None:
        raise SystemExit(
            "tesseract is not installed (apt-get install tesseract-ocr); or leave it out: --engines"
        )
    figures = {}
    for folder in args.sets:
        pairs = load_set(folder)[: args.limit]
        paths, labels = [path for path, _ in pairs], [label.strip() for _, label in pairs]
        row = {name: score(labels, ENGINES[name](paths)) for name in engines}
        figures[folder.name] = {"numbers": len(pairs), **row}
        print(f"{folder.name} ({len(pairs)} numbers)")
        for name, result in row.items():
            lengths = ", ".join(
                f"{length}: {share:.1%}" for length, share in result["exact_by_length"].items()
            )
            print(
                f"  {name:10s} exact {result['exact_match']:6.1%}  ANLD {result['anld']:.3f}  "
                f"length right {result['length_right']:6.1%}  by length {lengths}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
