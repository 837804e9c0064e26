"""The best path through a field's cuts (the reader's search, inference/numbers.py): dynamic programming over
the pieces, left to right, each step a candidate digit covering the next pieces. Marks before the first
digit or after the last (a cross written after a number, a neighbour's stroke) may be left out as "no
digit", at a cost: a piece there is read as a digit only when the network prefers it to that cost."""

from __future__ import annotations

import math

import numpy as np

from lenet_cli.core.errors import ImageError
from lenet_cli.images.seams import SPLIT_WIDTH
from lenet_cli.images.segment import Segmentation

SKIP_COST = 1.8  # per stroke group left out before the first digit or after the last ...
SHORT_PENALTY = 0.5  # ... plus this per tenth of the digits' height that it falls short of 0.75 of it, as a
# candidate digit pays: leaving a small mark out is no cheaper than reading it (a small "0" is a digit)
WIDEST_SKIPPED = 1.0  # digit heights: a wider stroke group is writing, never left out
SKIPPED = -2  # in `best`: the pieces before this point were left out
NARROW_CUT_PENALTY = 1.0  # for reading one stroke group narrower than SPLIT_WIDTH as two digits: such a
# group is offered a cut in its middle (two linked digits, "00"), and the halves of a "0" look like "11"


def best_path(
    segmentation: Segmentation,
    runs: list[tuple[int, int]],
    class_scores: np.ndarray,
    length: tuple[int, int] | None,
    skip_cost: float | None = SKIP_COST,
) -> list[int]:
    """The candidates (indices into `runs`) that cover the pieces once, left to right, with the best total
    score and, if `length` is given, a digit count within it. Pieces before the first candidate or after the
    last are left out at `skip_cost` a stroke group; with `skip_cost=None` every piece is covered."""
    count = segmentation.count
    ends = skip_costs(segmentation, skip_cost)
    path = path_through(count, runs, class_scores, length, ends, cut_costs(segmentation))
    if path is None:
        wanted = (
            f"{length[0]}"
            if length and length[0] == length[1]
            else f"{length[0]}-{length[1]}"
            if length
            else ""
        )
        raise ImageError(f"could not find {wanted} digits in the image (found {count} pieces)")
    return path


def path_through(
    count: int,
    runs: list[tuple[int, int]],
    class_scores: np.ndarray,
    length: tuple[int, int] | None,
    ends: tuple[list[float], list[float]],
    cuts: list[float] | None = None,
) -> list[int] | None:
    """`best_path`'s search over `count` pieces, with the end costs (leading, trailing) already known (see
    `skip_costs`) and, if given, what a digit that starts at each piece right after another costs (see
    `cut_costs`); None where no path fits."""
    most = length[1] if length else count
    scores = class_scores.max(axis=1).tolist()
    ending_at: list[list[int]] = [[] for _ in range(count + 1)]
    for index, (_, stop) in enumerate(runs):
        ending_at[stop].append(index)
    leading, trailing = ends
    # best[stop][digits]: the best score covering pieces 0..stop-1 with that many digits, and how.
    best: list[dict[int, tuple[float, int]]] = [{0: (0.0, -1)}] + [
        {0: (-leading[stop], SKIPPED)} if leading[stop] < math.inf else {} for stop in range(1, count + 1)
    ]
    for stop in range(1, count + 1):
        for index in ending_at[stop]:
            start = runs[index][0]
            for digits, (score, _) in best[start].items():
                if digits + 1 > most:
                    continue
                total = score + scores[index] - (cuts[start] if cuts and digits else 0.0)
                if total > best[stop].get(digits + 1, (-math.inf, -1))[0]:
                    best[stop][digits + 1] = (total, index)
        if length is None and len(best[stop]) > 2:  # any count will do: the best path alone goes on
            digits = max((d for d in best[stop] if d), key=lambda d: best[stop][d][0])
            best[stop] = {d: best[stop][d] for d in (0, digits) if d in best[stop]}
    finishes = [
        (score - trailing[stop], stop, digits)
        for stop in range(1, count + 1)
        if trailing[stop] < math.inf
        for digits, (score, _) in best[stop].items()
        if digits >= 1 and (length is None or length[0] <= digits <= length[1])
    ]
    if not finishes:
        return None
    _, stop, digits = max(finishes)
    path = []
    while stop > 0 and best[stop][digits][1] != SKIPPED:
        index = best[stop][digits][1]
        path.append(index)
        stop, digits = runs[index][0], digits - 1
    return path[::-1]


def skip_costs(
    segmentation: Segmentation, skip_cost: float | None, short_penalty: float = SHORT_PENALTY
) -> tuple[list[float], list[float]]:
    """What leaving out pieces 0..stop-1 costs (leading[stop]) and pieces stop..count-1 (trailing[stop]):
    `skip_cost` for each stroke group they hold (a group cut in pieces is one mark), plus `short_penalty`
    for each tenth of the digits' height a group falls short of 0.75 of it; inf where not allowed."""
    count = segmentation.count
    leading, trailing = [0.0] + [math.inf] * count, [math.inf] * count + [0.0]
    if skip_cost is None:
        return leading, trailing
    extents = segmentation.group_boxes()
    height = segmentation.digit_height
    cost = {
        group: skip_cost + short_penalty * 10 * max(0.0, 0.75 - box.height / height)
        if box.width <= WIDEST_SKIPPED * height
        else math.inf
        for group, box in extents.items()
    }
    seen: set[int] = set()
    for stop in range(1, count + 1):
        seen.add(segmentation.groups[stop - 1])
        leading[stop] = sum(cost[group] for group in seen)
    seen = set()
    for stop in range(count - 1, -1, -1):
        seen.add(segmentation.groups[stop])
        trailing[stop] = sum(cost[group] for group in seen)
    return leading, trailing


def cut_costs(segmentation: Segmentation) -> list[float]:
    """What reading piece stop-1 and piece stop as parts of different digits costs (cuts[stop]):
    NARROW_CUT_PENALTY where both are cut from one stroke group narrower than SPLIT_WIDTH digit heights,
    so a stroke is read as two digits only where the network is that much surer of them; else nothing."""
    extents = segmentation.group_boxes()
    narrow = {group for group, box in extents.items() if box.width < SPLIT_WIDTH * segmentation.digit_height}
    groups = segmentation.groups
    return (
        [0.0]
        + [
            NARROW_CUT_PENALTY if groups[stop - 1] == groups[stop] and groups[stop] in narrow else 0.0
            for stop in range(1, segmentation.count)
        ]
        + [0.0]
    )
