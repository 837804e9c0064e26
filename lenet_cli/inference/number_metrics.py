"""How well whole numbers are read: a folder of images with a labels.csv (`file,label`, the label the digits
only), the form digit-string sets use, read by `lenet read`'s reader and scored as the ICFHR 2014 digit
string competition scored its entries.

- exact match: the share of numbers read exactly (the field's top-1);
- ANLD: the average normalised Levenshtein distance, each number's edit distance between the label and
  what was read divided by the longer of the two (0: all right, 1: nothing right);
- accuracy by length, the most confident mistakes, and the files that could not be read. An image that
  cannot be read counts as read wrong (an empty reading: distance 1), as a user would see it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lenet_cli.data.number_folders import load_labels
from lenet_cli.inference.number_files import read_files
from lenet_cli.inference.numbers import Reading

if TYPE_CHECKING:
    from lenet_cli.inference.numbers import Model


@dataclass
class NumberMistake:
    path: str
    label: str
    read: str
    confidence: float
    reading: Reading

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label, "read": self.read, "confidence": self.confidence}


@dataclass
class NumberMetrics:
    total: int
    exact: int
    anld: float
    by_length: dict[int, tuple[int, int]]  # digits in the label -> (numbers, read exactly)
    mistakes: list[NumberMistake] = field(default_factory=list)  # most confident first
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (path, label, why)

    @property
    def exact_match(self) -> float:
        return self.exact / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "exact_match": self.exact_match,
            "exact": self.exact,
            "anld": self.anld,
            "by_length": [
                {"length": length, "count": count, "exact_match": right / count}
                for length, (count, right) in sorted(self.by_length.items())
            ],
            "mistakes": [mistake.to_dict() for mistake in self.mistakes],
            "errors": [{"path": path, "label": label, "error": why} for path, label, why in self.errors],
        }


def edit_distance(first: str, second: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from one to the other."""
    previous = list(range(len(second) + 1))
    for i, char in enumerate(first, 1):
        current = [i]
        for j, other in enumerate(second, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def normalised_distance(label: str, read: str) -> float:
    longest = max(len(label), len(read))
    return edit_distance(label, read) / longest if longest else 0.0


def evaluate_numbers(
    model: Model, folder: str | os.PathLike, show_progress: bool = False, mistakes_kept: int = 20
) -> NumberMetrics:
    """Read every image FOLDER/labels.csv lists with `lenet read`'s own reader (read_files) and score the
    readings against the labels."""
    pairs = load_labels(folder)
    readings = read_files(model, [path for path, _ in pairs], show_progress=show_progress)
    by_length: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    exact, distance = 0, 0.0
    mistakes, errors = [], []
    for (path, label), reading in zip(pairs, readings, strict=True):
        read = reading.number or ""
        right = read == label
        exact += right
        distance += normalised_distance(label, read)
        by_length[len(label)][0] += 1
        by_length[len(label)][1] += right
        if reading.error is not None:
            errors.append((str(path), label, reading.error))
        elif not right:
            mistakes.append(NumberMistake(str(path), label, read, reading.confidence or 0.0, reading))
    mistakes.sort(key=lambda mistake: -mistake.confidence)
    return NumberMetrics(
        len(pairs),
        exact,
        distance / len(pairs),
        {k: (v[0], v[1]) for k, v in by_length.items()},
        mistakes[:mistakes_kept],
        errors,
    )
