"""The pieces of one Teach run, each a plain function or a small class: split the collected drawings,
measure a model, and the rule that decides whether the taught model may answer (the `lenet train` child
that learns is teach_child.py's).

The training itself is `lenet train --init CURRENT --images LEARN --epochs 1` in a child process, so the
recipe is the command line's to the letter and serving never waits for it (serving does not import
training; the child is the boundary).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lenet_cli.core.errors import LenetError
from lenet_cli.data.datasets import Split
from lenet_cli.data.folders import read_labelled_folders
from lenet_cli.inference.evaluate import evaluate

MIN_PER_CLASS = 5  # drawings of each class before teaching starts: four to learn from, one held out
HOLD_OUT_EVERY = 5  # every fifth drawing of each class (by name, so by time) is held out, at least one
FEW_HELD_OUT = 30  # below this many held-out drawings, the page says the figure is rough


@dataclass(frozen=True)
class Figures:
    """Accuracy on the held-out drawings and on the dataset's test set."""

    held_out: float
    test: float

    def to_dict(self) -> dict[str, float]:
        return {"held_out": self.held_out, "test": self.test}


@dataclass(frozen=True)
class SwapRule:
    """A taught model answers only if it reads the held-out drawings at least as well (plus
    `min_held_out_gain`) and loses at most `max_test_drop` on the test set (fractions, not points)."""

    min_held_out_gain: float = 0.0
    max_test_drop: float = 0.005

    def refusal(self, before: Figures, after: Figures) -> str | None:
        """None when `after` may answer; else why it is kept out, in words for the page."""
        if after.held_out < before.held_out + self.min_held_out_gain - 1e-9:
            return (
                f"it reads the held-out drawings worse ({100 * after.held_out:.1f}% against "
                f"{100 * before.held_out:.1f}%)"
            )
        if after.test < before.test - self.max_test_drop - 1e-9:
            return (
                f"it loses {100 * (before.test - after.test):.2f} points on the test set "
                f"(at most {100 * self.max_test_drop:.1f} allowed)"
            )
        return None


def missing_per_class(counts: dict[str, int]) -> dict[str, int]:
    """How many more drawings each class needs before teaching may start."""
    return {name: MIN_PER_CLASS - count for name, count in counts.items() if count < MIN_PER_CLASS}


def split_drawings(collect_dir: Path, workspace: Path, names: list[str]) -> tuple[Path, Path, int]:
    """Hard links (copies where links are refused) of the readable collected drawings into
    workspace/learn/<class>/ and workspace/held-out/<class>/: every HOLD_OUT_EVERY-th of each class, by
    name, held out. The collected files are only read. Returns (learn, held_out, unreadable count)."""
    labelled = read_labelled_folders([collect_dir], names, regular_only=True)
    by_class: dict[int, list[str]] = {}
    for path, label in zip(labelled.paths, labelled.labels.tolist(), strict=True):
        by_class.setdefault(label, []).append(path)
    short = [names[label] for label in range(len(names)) if len(by_class.get(label, [])) < MIN_PER_CLASS]
    if short:
        raise LenetError(
            f"too few readable drawings of {', '.join(short)} ({MIN_PER_CLASS} of each are needed; "
            f"{len(labelled.errors)} could not be read)"
        )
    learn, held_out = workspace / "learn", workspace / "held-out"
    for label, paths in by_class.items():
        for index, path in enumerate(sorted(paths)):
            held = index % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1 or (
                index == 0 and len(paths) < HOLD_OUT_EVERY
            )
            target = (held_out if held else learn) / str(label) / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(Path(path), target)
    return learn, held_out, len(labelled.errors)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links refused: a copy, written whole
        import shutil

        shutil.copyfile(source, target)


def labelled_split(folder: Path, names: list[str]) -> Split:
    labelled = read_labelled_folders([folder], names, regular_only=True)
    return Split(labelled.images, labelled.labels)


# Each held-out drawing is read as drawn and moved a pixel each way and turned 8 degrees each way: with
# a couple of drawings a class, one drawing read differently would otherwise move the figure by 5 points
# and decide the swap alone. (x shift, y shift in pixels; turn in degrees.)
HELD_OUT_VIEWS = ((0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 8), (0, 0, -8))


def measure_held_out(model: nn.Module, held_out: Split) -> float:
    """The share of the held-out drawings' views (HELD_OUT_VIEWS) that `model` reads right."""
    return evaluate(model, held_out_views(held_out)).accuracy


def held_out_views(held_out: Split) -> Split:
    """Every held-out drawing in each of HELD_OUT_VIEWS, uint8 like the drawings."""
    images = held_out.images.float().div(255)[:, None]
    views = []
    for shift_x, shift_y, degrees in HELD_OUT_VIEWS:
        turn = math.radians(degrees)
        # affine_grid maps output to input in [-1, 1] coordinates: a pixel is 2/28 of the width
        matrix = torch.tensor(
            [
                [math.cos(turn), -math.sin(turn), -shift_x * 2 / 28],
                [math.sin(turn), math.cos(turn), -shift_y * 2 / 28],
            ]
        )
        grid = F.affine_grid(matrix.expand(len(images), 2, 3), list(images.shape), align_corners=False)
        moved = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
        views.append(moved[:, 0].mul(255).round().clamp(0, 255).to(torch.uint8))
    return Split(torch.cat(views), held_out.labels.repeat(len(HELD_OUT_VIEWS)))
