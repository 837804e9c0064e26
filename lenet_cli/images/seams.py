"""Where to cut a group of strokes that may be more than one digit (segment.py's step 4): a cut offered in
every stretch of the group, each a seam of least ink kept near its column, or one down the middle of a
narrow group. Numpy only."""

from __future__ import annotations

import numpy as np

STEP_COST = 0.05  # what a cut pays for each column it moves sideways between rows, against a pixel of ink
CUT_MARGIN = 0.12  # cuts keep this many digit heights from a group's ends and from each other
CUT_SPACING = 0.2  # a group is offered a cut for about every this many digit heights of its width
SPLIT_WIDTH = 0.6  # groups wider than this many digit heights are offered cuts in every stretch ...
MIDDLE_WIDTH = 0.4  # ... and narrower groups wider than this one cut in the middle (two linked digits) ...
MIDDLE_BAND = 1  # ... that keeps within this many pixels of the middle column
CUT_BAND = 0.15  # a cut keeps within this many digit heights of the column it is offered at


def split_lines(member: np.ndarray, weights: np.ndarray, left: int, digit_height: float) -> list[np.ndarray]:
    """Where to cut a group (`member` and `weights` cut to its box, whose left edge is at column `left`)
    wider than one digit: for each candidate cut, its column in every row of the box (a float; pixels left
    of it go left), left to right.

    A cut is offered in every stretch CUT_SPACING wide, at the column the fewest strokes cross, and runs from
    top to bottom along the path that crosses the least ink within CUT_BAND of that column (dynamic
    programming over the rows, as seam carving does): it weaves between digits that touch or overlap, but
    cannot slip away to a cheaper gap elsewhere, so digits that overlap too much for a clean cut still get
    cuts near where they meet. A group narrower than SPLIT_WIDTH (but not than MIDDLE_WIDTH) is offered one
    cut, nearly straight down its middle, where two digits written in one stroke meet. The reader's network
    decides which pieces are digits (and its search makes reading such a group as two cost more)."""
    if member.shape[1] < MIDDLE_WIDTH * digit_height:
        return []
    region = np.where(member, weights, 0).astype(np.float32)
    region /= max(float(region.max()), 1e-6)
    if member.shape[1] < SPLIT_WIDTH * digit_height:
        # Two digits linked in one stroke ("11", "10") narrower than SPLIT_WIDTH meet about the middle,
        # where a seam of least ink need not go: a nearly straight cut there is offered instead.
        paths = _banded_seams(region, np.array([member.shape[1] // 2]), MIDDLE_BAND)
    else:
        centres = _cut_columns(region.sum(axis=0), digit_height)
        if not centres:
            return []
        paths = _banded_seams(region, np.array(centres), max(1, int(CUT_BAND * digit_height)))
    paths = np.maximum.accumulate(paths, axis=0)  # left to right, never crossing
    unique = [
        path for index, path in enumerate(paths) if index == 0 or not np.array_equal(path, paths[index - 1])
    ]
    return [path.astype(np.float32) + left + 0.5 for path in unique]


def _cut_columns(profile: np.ndarray, digit_height: float) -> list[int]:
    """The column the least ink crosses in every stretch CUT_SPACING wide, kept CUT_MARGIN from the
    group's ends and from each other."""
    width = len(profile)
    margin = max(2, int(CUT_MARGIN * digit_height))
    step = max(1, int(CUT_SPACING * digit_height))
    chosen: list[int] = []
    for start in range(margin, width - margin, step):
        stretch = profile[start : min(start + step, width - margin)]
        column = start + int(stretch.argmin())
        if all(abs(column - other) >= margin for other in chosen):
            chosen.append(column)
    return chosen


def _banded_seams(region: np.ndarray, centres: np.ndarray, band: int) -> np.ndarray:
    """For each centre column, the top-to-bottom path within `band` columns of it that crosses the least
    ink, moving at most a column a row (STEP_COST a move): int (len(centres), height), all at once."""
    height, width = region.shape
    columns = centres[:, None] + np.arange(-band, band + 1)[None, :]  # (n, 2 band + 1)
    inside = (columns >= 0) & (columns < width)
    ink = np.where(inside[None], region[:, np.clip(columns, 0, width - 1)], np.inf)  # (height, n, 2 band + 1)
    cost = ink[0].copy()
    came_from = np.zeros(ink.shape, np.int8)
    from_left, from_right = np.full_like(cost, np.inf), np.full_like(cost, np.inf)  # edges stay inf
    for row in range(1, height):
        np.add(cost[:, :-1], STEP_COST, out=from_left[:, 1:])
        np.add(cost[:, 1:], STEP_COST, out=from_right[:, :-1])
        best = np.minimum(np.minimum(from_left, cost), from_right)
        came_from[row] = np.where(cost == best, 0, np.where(from_left == best, -1, 1))
        cost = best + ink[row]
    rows_of = np.arange(len(centres))
    position = cost.argmin(axis=1)
    paths = np.empty((len(centres), height), np.int64)
    for row in range(height - 1, -1, -1):
        paths[:, row] = columns[rows_of, position]
        position = position + came_from[row, rows_of, position]
    return paths
