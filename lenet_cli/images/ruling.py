"""Ruled lines in a written field's ink mask: the underline, a printed box, a register's cell rules. A line is
ink in a run far longer than any stroke of a digit, found even where it is broken by a pixel or two or
slanted a little; it is taken out of the mask except where a stroke crosses it, so that a digit written
through a line keeps its stroke. Numpy only, linear in the pixels."""

from __future__ import annotations

import math

import numpy as np

BRIDGE = 2  # gaps in a line up to this many pixels are bridged (a faint or broken rule)
ACROSS_HEIGHTS = 1.5  # a horizontal line spans at least this many times the field's height, ...
ACROSS_SHARE = 0.4  # ... or this share of its width in a field narrower than it is tall (a cell); ...
DOWN_SHARE = 0.85  # ... a vertical one this share of the field's height
EDGE_DEPTH = 2  # pixels: a line's blurred edge is this deep (field.py keeps faint ink beside strokes)
SHORTEST_LINE = 8  # pixels: no shorter run is a line


def long_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """Pixels of the mask in horizontal runs of at least `length` (runs found in numpy, filled by a
    cumulative sum of their starts and ends)."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    keep = ends - starts >= length
    marks = np.zeros((height, width + 1), np.int32)
    np.add.at(marks, (rows[keep], starts[keep]), 1)
    np.add.at(marks, (rows[keep], ends[keep]), -1)
    return np.cumsum(marks, axis=1)[:, :width] > 0


def _bridged(mask: np.ndarray) -> np.ndarray:
    """The mask with horizontal gaps of up to BRIDGE pixels filled, and each row joined with the rows
    above and below it, so that a broken or slightly slanted line is one long run."""
    bridged = mask.copy()
    for gap in range(1, BRIDGE + 1):
        joined = mask[:, : -gap - 1] & mask[:, gap + 1 :]
        for offset in range(1, gap + 1):
            bridged[:, offset : offset - gap - 1 or None] |= joined
    spread = bridged.copy()
    spread[1:] |= bridged[:-1]
    spread[:-1] |= bridged[1:]
    return spread


def horizontal_lines(mask: np.ndarray, length: int) -> np.ndarray:
    """Ink of the mask on horizontal lines at least `length` long, with a pixel either side of each (the
    line's faint edges break into short runs): the runs are found with each row joined to its neighbours."""
    return long_runs(_bridged(mask), length) & mask


def _faint_edges(mask: np.ndarray, lines: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Ink up to EDGE_DEPTH pixels beyond the lines (above or below) that is fainter than the field's typical
    ink: the line's blurred edge, not a stroke lying along it (the foot of a 2 on an underline)."""
    faint = ink < np.quantile(ink[mask], 0.75) if mask.any() else np.zeros(mask.shape, bool)
    edges = np.zeros(lines.shape, bool)
    reached = lines
    for _ in range(EDGE_DEPTH):
        ring = np.zeros(lines.shape, bool)
        ring[1:] |= reached[:-1]
        ring[:-1] |= reached[1:]
        edges |= ring & mask & ~lines & faint
        reached = lines | edges
    return edges


def crossing(mask: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Pixels of `line` (horizontal lines in `mask`) that a stroke crosses: in their column, the first ink
    off the line above them and the first below both touch the line (within a pixel sideways)."""
    height = mask.shape[0]
    off_line = mask & ~line
    near = off_line.copy()
    near[:, 1:] |= off_line[:, :-1]
    near[:, :-1] |= off_line[:, 1:]
    rows = np.arange(height)[:, None]
    # For each pixel, the nearest row above (below) that is not on a line, and whether stroke ink is there.
    above = np.maximum.accumulate(np.where(~line, rows, -1), axis=0)
    above = np.vstack([np.full((1, mask.shape[1]), -1), above[:-1]])
    below = np.minimum.accumulate(np.where(~line, rows, height)[::-1], axis=0)[::-1]
    below = np.vstack([below[1:], np.full((1, mask.shape[1]), height)])
    columns = np.arange(mask.shape[1])[None, :]
    ink_above = (above >= 0) & near[np.maximum(above, 0), columns]
    ink_below = (below < height) & near[np.minimum(below, height - 1), columns]
    return line & ink_above & ink_below


def remove_lines(mask: np.ndarray, ink: np.ndarray | None = None) -> np.ndarray:
    """The mask without ruled lines, strokes that cross a line kept whole; with `ink` (the grey levels),
    the lines' faint edges go too."""
    height, width = mask.shape
    # A field's digits are shorter than it is tall: no stroke of theirs, nor the bars of a few touching
    # digits joined across their gaps, runs half as far again. A cell narrower than it is tall has its
    # rules measured against its width.
    reach = ACROSS_HEIGHTS * height if width >= height else ACROSS_SHARE * width
    across_length = max(SHORTEST_LINE, math.ceil(reach))
    down_length = max(SHORTEST_LINE, math.ceil(DOWN_SHARE * height))
    across = horizontal_lines(mask, across_length)
    down = horizontal_lines(mask.T, down_length).T
    if ink is not None:
        across |= _faint_edges(mask, across, ink)
        down |= _faint_edges(mask.T, down.T, ink.T).T
    kept = crossing(mask, across) | crossing(mask.T, down.T).T
    return mask & ~((across | down) & ~kept)
