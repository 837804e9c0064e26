"""What `lenet train --numbers` teaches the shipped reader, and what it costs.

For each share of a labelled numbers folder (every 10th row, every 2nd, all of them), it runs
`lenet train --init reader --numbers SUBSET --data-dir MNIST` with the defaults otherwise, then
`lenet evaluate CKPT --numbers VALIDATION`; the shipped reader out of the box is measured on the same
folder first. With --timing N it also times the whole training command on N numbers (every k-th row).
Subsets are folders of symbolic links in --workdir (the images are never copied). Each step is a separate
`python -m lenet_cli` process, so the figures are what a user's command gives.

    python bench/training/teach_numbers.py --train ../shared/data/numbers/register-rows-train \\
        --validation ../shared/data/numbers/register-rows-validation --data-dir ../shared/data/mnist \\
        --shares 10 2 1 --timing 600 --workdir /tmp/teach-numbers

For development, `--dev-split 7` only writes WORKDIR/fit and WORKDIR/dev, the train folder split by page
(the tuning of this round was done by teaching on fit and reading dev).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path


def subset(source: Path, every: int, limit: int | None, target: Path) -> int:
    """A folder of links to every `every`-th row of source/labels.csv (at most `limit`), and its list."""
    with open(source / "labels.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return link_rows(source, rows[::every][:limit], target)


def link_rows(source: Path, rows: list[list[str]], target: Path) -> int:
    """target/: a link to each row's image in source/ and a labels.csv of the rows; how many."""
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for name, label in rows:
            link = target / name
            if not link.exists():
                link.symlink_to((source / name).resolve())
            writer.writerow([name, label])
    return len(rows)


def split_by_page(source: Path, modulus: int, workdir: Path) -> tuple[int, int]:
    """Development folders of links from a register folder, split by page (a cell's file name less its
    `_row_id_N`): pages whose name's SHA-256 is 0 mod `modulus` go to workdir/dev, the rest to workdir/fit,
    so that no page is in both. The numbers of rows in each."""
    with open(source / "labels.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    held_out = [_page_hash(row[0]) % modulus == 0 for row in rows]
    dev = link_rows(source, [row for row, out in zip(rows, held_out, strict=True) if out], workdir / "dev")
    fit = link_rows(
        source, [row for row, out in zip(rows, held_out, strict=True) if not out], workdir / "fit"
    )
    return dev, fit


def _page_hash(file: str) -> int:
    return int(hashlib.sha256(file.rsplit("_row_id_", 1)[0].encode()).hexdigest(), 16)


def lenet(*args: str) -> tuple[dict, float]:
    """Run `lenet ARGS --json`: its JSON document and the whole process's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lenet_cli", *args, "--json"], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"lenet {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout), seconds


def read_validation(validation: Path, checkpoint: Path | None) -> dict:
    document, seconds = lenet(
        "evaluate", *([str(checkpoint)] if checkpoint else []), "--numbers", str(validation)
    )
    by_length = {row["length"]: round(row["exact_match"], 4) for row in document["by_length"]}
    return {
        "exact": round(document["exact_match"], 4),
        "anld": round(document["anld"], 4),
        "by_length": by_length,
        "unread": len(document["errors"]),
        "seconds": round(seconds, 1),
    }


def teach(args: argparse.Namespace, name: str, folder: Path) -> dict:
    runs = args.workdir / f"runs-{name}"
    document, seconds = lenet(
        "train",
        "--init",
        "reader",
        "--numbers",
        str(folder),
        "--data-dir",
        str(args.data_dir),
        "--checkpoint-dir",
        str(runs),
    )
    return {
        "train_seconds": round(seconds, 1),
        "mnist_test": document["test_accuracy"],
        "checkpoint": document["checkpoint"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--shares", type=int, nargs="*", default=[10, 2, 1], help="every k-th row of --train")
    parser.add_argument("--timing", type=int, default=0, help="also time training on this many numbers")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/teach-numbers"))
    parser.add_argument(
        "--dev-split",
        type=int,
        metavar="K",
        help="only write WORKDIR/fit and WORKDIR/dev from --train, split by page (1 page in K to dev), and stop",
    )
    args = parser.parse_args()
    if args.dev_split:
        dev, fit = split_by_page(args.train, args.dev_split, args.workdir)
        print(json.dumps({"dev": dev, "fit": fit}))
        return
    results: dict[str, dict] = {}
    if not args.skip_baseline:
        results["shipped reader"] = read_validation(args.validation, None)
        print(json.dumps({"shipped reader": results["shipped reader"]}), flush=True)
    if args.timing:
        folder = args.workdir / f"timing-{args.timing}"
        count = subset(
            args.train,
            max(1, sum(1 for _ in open(args.train / "labels.csv")) // args.timing),
            args.timing,
            folder,
        )
        results[f"timing on {count}"] = teach(args, f"timing-{count}", folder)
        print(json.dumps({f"timing on {count}": results[f"timing on {count}"]}), flush=True)
    for every in args.shares:
        folder = args.workdir / f"every-{every}"
        count = subset(args.train, every, None, folder)
        taught = teach(args, f"every-{every}", folder)
        taught |= read_validation(args.validation, Path(taught["checkpoint"]))
        results[f"every {every} ({count} numbers)"] = taught
        print(json.dumps({f"every {every} ({count} numbers)": taught}), flush=True)


if __name__ == "__main__":
    main()
