"""Make the pretrained model lenet ships: a default-recipe checkpoint with its training record, without
the optimizer state a resume would need (a third of the size), plus a JSON note of how it was made.

    lenet train --epochs 5 --seed 0 --data-dir ../shared/data/mnist --checkpoint-dir /tmp/base
    python bench/ship_pretrained.py /tmp/base/run-1/last.pt \\
        --command "lenet train --epochs 5 --seed 0 --data-dir ../shared/data/mnist"
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from lenet_cli.formats.checkpoint import load_checkpoint, save_checkpoint
from lenet_cli.formats.model_files import PRETRAINED_NOTE
from lenet_cli.formats.shipped import PRETRAINED

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
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--command", required=True, help="the command that trained it, recorded beside it")
    args = parser.parse_args()
    saved = load_checkpoint(args.checkpoint)
    slim = {key: saved[key] for key in KEPT if key in saved}
    slim["config"] = {
        **slim["config"],
        "data_dir": ".data",
        "checkpoint_dir": "checkpoints",
    }  # not this machine's
    save_checkpoint(PRETRAINED, slim)
    note = {
        "file": PRETRAINED.name,
        "sha256": hashlib.sha256(PRETRAINED.read_bytes()).hexdigest(),
        "bytes": PRETRAINED.stat().st_size,
        "command": args.command,
        "dataset": slim["dataset"],
        "test_accuracy": slim["metrics"]["test_accuracy"],
        "test_loss": slim["metrics"]["test_loss"],
        "created": slim["created"],
        "versions": slim["versions"],
    }
    PRETRAINED_NOTE.write_text(json.dumps(note, indent=2) + "\n")
    print(json.dumps(note, indent=2))


if __name__ == "__main__":
    main()
