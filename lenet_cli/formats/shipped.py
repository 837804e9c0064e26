"""The model lenet ships, and the rule for which model runs when none is named. Torch-free, so a
`lenet predict` that needs no torch can ask."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lenet_cli.core.errors import CheckpointError

PRETRAINED = (
    Path(__file__).parent / "pretrained" / "lenet5-mnist.pt"
)  # made by bench/training/ship_pretrained.py
PRETRAINED_NOTE = PRETRAINED.with_suffix(".json")  # how it was made, its test accuracy and SHA-256


TEACH_RECORD = "teach.json"  # in a run folder that serve's Teach made: whether its model was accepted


def find_latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path:
    """The most recently written `*.pt` anywhere under `checkpoint_dir`, but none of a run that serve's
    Teach did not accept (its TEACH_RECORD says learning, kept out, failed or undone)."""
    root = Path(checkpoint_dir)
    candidates = (
        [path for path in root.rglob("*.pt") if path.is_file() and not _not_accepted(path.parent)]
        if root.is_dir()
        else []
    )
    if not candidates:
        raise CheckpointError(
            f"no checkpoint found in {root}/; train one with `lenet train` or pass --checkpoint PATH"
        )
    return max(candidates, key=lambda path: path.stat().st_mtime)


def _not_accepted(run_dir: Path) -> bool:
    record = run_dir / TEACH_RECORD
    if not record.is_file():
        return False  # not a taught run
    try:
        return json.loads(record.read_text()).get("status") != "accepted"
    except (OSError, ValueError, AttributeError):
        return True


def default_model(checkpoint_dir: str | os.PathLike) -> tuple[Path, str | None]:
    """The model to use when none is named: the newest checkpoint under `checkpoint_dir` (not one of a
    taught run that was not accepted), else the one shipped with lenet, with a line that says so."""
    try:
        return find_latest_checkpoint(checkpoint_dir), None
    except CheckpointError:
        if not PRETRAINED.is_file():
            raise
    note = json.loads(PRETRAINED_NOTE.read_text())
    return PRETRAINED, (
        f"Using the model shipped with lenet (LeNet-5 on {note['dataset']}, "
        f"{note['test_accuracy']:.2%} test accuracy); train your own with: lenet train"
    )


READER = PRETRAINED.with_name("lenet5-reader.pt")  # the model shipped for `lenet read` (trained with --cuts)
READER_NOTE = READER.with_suffix(".json")


def reading_model(checkpoint: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The model that reads whole numbers: the one named, else the one shipped for reading (a LeNet-5 that
    also learned the reader's cuts), with a line that says so."""
    if checkpoint is not None:
        return Path(checkpoint), None
    if not READER.is_file():
        raise CheckpointError(f"the model shipped for reading is missing ({READER}); pass --checkpoint PATH")
    note = json.loads(READER_NOTE.read_text())
    return READER, (
        f"Reading with the model shipped for reading numbers (LeNet-5 on {note['dataset']} and the reader's "
        f"cuts, {note['test_accuracy']:.2%} test accuracy); another with --checkpoint"
    )


SHIPPED_NAMES = {
    "reader": READER,
    "digits": PRETRAINED,
}  # what `--init NAME` means without a file of that name


def init_source(init: str | os.PathLike) -> Path:
    """The file `--init` starts from: a checkpoint's path, or `reader` / `digits` for the models shipped
    with lenet (a file of that name in the working folder wins, as a path always does)."""
    path = Path(init)
    if str(init) in SHIPPED_NAMES and not path.exists():
        return SHIPPED_NAMES[str(init)]
    return path


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether `path` is the model shipped for digits."""
    try:
        return Path(path).resolve() == PRETRAINED.resolve()
    except OSError:
        return False
