"""Make the pretrained model lenet ships: a checkpoint with its training record, without the optimizer
state a resume would need (a third of the size), plus a JSON note of how it was made: the command, test
accuracy, SHA-256, with --usps the accuracy on USPS's test digits (never trained on) and, for a --styles
run, the fonts its style digits were drawn in (package, licence). The shipped models were made with
`lenet train` run in a checkout of the commit named (`git worktree add /tmp/at a4eb0bb`), this script
from today's tree; `--commit` records that commit in the note, and the style pool's SHA-256 there checks
that a rerun drew the same digits. Those commits trained from scratch with batches of 64, a one-cycle
peak of 3e-3 and no label smoothing, the defaults then; the checkpoint's config records them:

    # the digit model, trained by commit a4eb0bb
    OMP_NUM_THREADS=1 lenet train --styles --epochs 8 --seed 0 --data-dir ../shared/data/mnist \\
        --checkpoint-dir /tmp/ship
    python bench/training/ship_pretrained.py /tmp/ship/run-1/last.pt --usps ../shared/data/usps \\
        --commit a4eb0bb --command "lenet train --styles --epochs 8 --seed 0 --data-dir ../shared/data/mnist"
    # the reader, trained by commit a975a2b: before a4eb0bb's loop rule (docs/performance.md, USPS)
    OMP_NUM_THREADS=1 lenet train --styles --cuts --epochs 8 --seed 0 --data-dir ../shared/data/mnist \\
        --checkpoint-dir /tmp/ship-reader
    python bench/training/ship_pretrained.py /tmp/ship-reader/run-1/last.pt --reader --usps ../shared/data/usps \\
        --commit a975a2b --command "lenet train --styles --cuts --epochs 8 --seed 0 --data-dir ../shared/data/mnist"

With --reader, the model shipped for `lenet read` (a run with --cuts) is written instead, beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from lenet_cli.formats.checkpoint import load_checkpoint, save_checkpoint
from lenet_cli.formats.shipped import PRETRAINED, PRETRAINED_NOTE, READER, READER_NOTE
from lenet_cli.training.style_fonts import HAND_FONTS

KEPT = (
    "format_version",
    "model",
    "epoch",
    "history",
    "config",
    "dataset",
    "world_size",
    "metrics",
    "versions",
    "created",
    "styles",
    "cuts",
)


def usps_accuracy(model_file: Path, folder: Path) -> float:
    """The share of USPS's 2,007 test digits the model reads right, as `lenet evaluate --dataset usps`."""
    from lenet_cli.data.usps import load_usps
    from lenet_cli.inference.fast_predict import load_predict_model

    images, labels = (tensor.numpy() for tensor in load_usps(folder, "test"))
    model, _ = load_predict_model(model_file)
    read = model.logits(images)[:, :10].argmax(1)
    return round(float((read == labels).mean()), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--command", required=True, help="the command that trained it, recorded beside it")
    parser.add_argument("--reader", action="store_true", help="ship it as the model `lenet read` uses")
    parser.add_argument("--commit", help="the commit of lenet that trained it, recorded beside it")
    parser.add_argument(
        "--usps", type=Path, help="folder of USPS's usps.t.bz2: record the test accuracy there"
    )
    args = parser.parse_args()
    target, target_note = (READER, READER_NOTE) if args.reader else (PRETRAINED, PRETRAINED_NOTE)
    saved = load_checkpoint(args.checkpoint)
    slim = {key: saved[key] for key in KEPT if key in saved}
    slim["config"] = {
        **slim["config"],
        "data_dir": ".data",
        "checkpoint_dir": "checkpoints",
    }  # not this machine's
    save_checkpoint(target, slim)
    note = {
        "file": target.name,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "bytes": target.stat().st_size,
        "command": args.command,
        **({"commit": args.commit} if args.commit else {}),
        "dataset": slim["dataset"],
        "test_accuracy": slim["metrics"]["test_accuracy"],
        "test_loss": slim["metrics"]["test_loss"],
        "created": slim["created"],
        "versions": slim["versions"],
    }
    if args.usps:
        note["usps_test_accuracy"] = usps_accuracy(target, args.usps)
    if slim.get("styles"):
        used = set(slim["styles"]["fonts"])
        note["style_pool"] = {key: slim["styles"][key] for key in ("count", "sources", "sha256")}
        note["fonts"] = [
            {"name": font.name, "package": font.package, "licence": font.licence}
            for font in HAND_FONTS
            if font.name in used
        ]
    if slim.get("cuts"):
        note["cuts"] = slim["cuts"]
    target_note.write_text(json.dumps(note, indent=2) + "\n")
    print(json.dumps(note, indent=2))


if __name__ == "__main__":
    main()
