"""Forced alignment: the reader's best path through a field's cuts, constrained to spell a known label.

`lenet read` takes the path through the candidate digits (inference/numbers.py) with the best total score,
each candidate scored by its best class. Given the label, the same dynamic programme scores each candidate
by the class the label asks for at that place and keeps only paths of exactly the label's length: the cut
the current model finds most plausible for that spelling (the 1998 paper's "segmentation training").
`lenet train --numbers` learns the pieces on it as their digits. Torch-free.
"""

from __future__ import annotations

import math

import numpy as np

from lenet_cli.images.segment import Segmentation
from lenet_cli.inference.number_path import path_through

ONE_DIGIT = 0.8  # a candidate off the path with this share of one path digit's ink ...
STRAY = 0.25  # ... and at most this share of any other's is that digit again, as --cuts labels its pieces
PART = 0.5  # one with less than this of every path digit's ink, or this of two, is not a digit
SKIPPED = -2  # in the search: the pieces before this point were left out


def spell(
    runs: list[tuple[int, int]],
    pieces: int,
    class_scores: np.ndarray,
    label: str,
    ends: tuple[list[float], list[float]] | None = None,
) -> list[int] | None:
    """The candidates (indices into `runs`) that cover the `pieces` once, left to right, spelling `label`
    digit by digit with the best total of `class_scores` (N, 10); None if no path of the label's length
    does. With `ends` (leading, trailing), pieces 0..k-1 may be left out before the first digit at
    leading[k] and pieces k.. after the last at trailing[k] (inf: not allowed), as the reader's search
    leaves out marks at a field's ends; without, every piece is covered."""
    digits = [int(char) for char in label]
    length = len(digits)
    if length == 0 or length > pieces:
        return None
    leading, trailing = ends or ([0.0] + [math.inf] * pieces, [math.inf] * pieces + [0.0])
    ending_at: list[list[int]] = [[] for _ in range(pieces + 1)]
    for index, (_, stop) in enumerate(runs):
        ending_at[stop].append(index)
    # best[stop][k]: the best score spelling the label's first k digits with pieces 0..stop-1, and how.
    best = [[(-leading[stop], SKIPPED)] + [(-math.inf, -1)] * length for stop in range(pieces + 1)]
    best[0][0] = (0.0, -1)
    for stop in range(1, pieces + 1):
        for index in ending_at[stop]:
            start = runs[index][0]
            for spelled in range(min(length, start + 1)):
                before = best[start][spelled][0]
                if before == -math.inf:
                    continue
                total = before + float(class_scores[index, digits[spelled]])
                if total > best[stop][spelled + 1][0]:
                    best[stop][spelled + 1] = (total, index)
    total, stop = max((best[stop][length][0] - trailing[stop], stop) for stop in range(1, pieces + 1))
    if total == -math.inf:
        return None
    path = []
    for spelled in range(length, 0, -1):
        index = best[stop][spelled][1]
        path.append(index)
        stop = runs[index][0]
    return path[::-1]


def read_through(
    runs: list[tuple[int, int]],
    pieces: int,
    class_scores: np.ndarray,
    ends: tuple[list[float], list[float]] | None = None,
) -> list[int]:
    """The reader's own best path (any number of digits, each candidate by its best class), the search of
    inference/number_path.py from the runs and end costs alone: what the model being trained reads. Empty
    where no path covers the pieces."""
    every_piece = ([0.0] + [math.inf] * pieces, [math.inf] * pieces + [0.0])
    return path_through(pieces, runs, class_scores, None, ends or every_piece) or []


def piece_ink(segmentation: Segmentation, mask: np.ndarray) -> np.ndarray:
    """Ink pixels of each piece (count,): what says how much of a digit a candidate holds."""
    counts = np.bincount(segmentation.labels[mask].ravel(), minlength=segmentation.count + 1)
    return counts[1 : segmentation.count + 1].astype(np.int64)


def candidate_targets(
    runs: list[tuple[int, int]], ink: np.ndarray, path: list[int], label: str, not_a_digit: int
) -> np.ndarray:
    """What each candidate is taught once the path spells `label`: the path's candidates their digits; a
    candidate that holds nearly all of one path digit's ink and little of another's (the digit without a
    speck the path gave it) that digit too; one with little of every digit, or much of two, `not_a_digit`;
    -1 for the ones in between (left out, as --cuts leaves them out)."""
    owner = np.zeros(len(ink), np.int64)  # 1 + the path digit each piece belongs to; 0: left out
    for place, index in enumerate(path):
        start, stop = runs[index]
        owner[start:stop] = place + 1
    digit_ink = np.array([max(int(ink[owner == place + 1].sum()), 1) for place in range(len(path))])
    targets = np.full(len(runs), -1, np.int64)
    for index, (start, stop) in enumerate(runs):
        held = (
            np.bincount(owner[start:stop], weights=ink[start:stop], minlength=len(path) + 1)[1:] / digit_ink
        )
        order = np.argsort(held)[::-1]
        first, second = held[order[0]], (held[order[1]] if len(held) > 1 else 0.0)
        if first >= ONE_DIGIT and second <= STRAY:
            targets[index] = int(label[order[0]])
        elif first < PART or second >= PART:
            targets[index] = not_a_digit
    for place, index in enumerate(path):
        targets[index] = int(label[place])
    return targets


def wrong_turns(runs: list[tuple[int, int]], read: list[int], spelled: list[int]) -> list[int]:
    """The candidates the reader's path takes that the label's path does not: where a misreading goes
    wrong (a stroke read twice, two digits read as one, a cross read as a digit)."""
    right = {runs[index] for index in spelled}
    return [index for index in read if runs[index] not in right]
