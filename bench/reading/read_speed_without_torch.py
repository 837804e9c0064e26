"""How long `lenet read` takes for a 5-digit number the way the command runs it: without torch (numpy's
LeNet-5, the model file read without torch), one thread.

    OMP_NUM_THREADS=1 python bench/reading/read_speed_without_torch.py /tmp/numbers

/tmp/numbers is a folder of sets as bench/reading/compose_numbers.py writes them; every 5-digit number of them
(at most 200) is read from its file's bytes (decode, clean-up, cuts, one forward pass of all candidates,
the best path). bench/reading/read_numbers.py measures the same with torch loaded (as `lenet serve` reads).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

from lenet_cli.formats.shipped import READER
from lenet_cli.inference.fast_predict import load_predict_model
from lenet_cli.inference.numbers import read_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=READER)
    args = parser.parse_args()
    model, _ = load_predict_model(args.checkpoint)
    amounts = []
    for folder in sorted(path for path in args.sets.iterdir() if (path / "labels.csv").is_file()):
        with open(folder / "labels.csv", newline="") as handle:
            amounts += [
                (folder / row["file"]).read_bytes()
                for row in csv.DictReader(handle)
                if len(row["label"]) == 5
            ]
    amounts = amounts[:200]
    for data in amounts[:5]:  # warm-up
        read_source(model, data, "auto", None)
    times = []
    for data in amounts:
        start = time.perf_counter()
        read_source(model, data, "auto", None)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    assert "torch" not in sys.modules, "torch was imported: this bench measures the reader without it"
    print(
        f"lenet read without torch, a 5-digit number from its file's bytes: median {statistics.median(times):.1f} ms, "
        f"90th percentile {times[int(0.9 * (len(times) - 1))]:.1f} ms ({len(times)} numbers)"
    )


if __name__ == "__main__":
    main()
