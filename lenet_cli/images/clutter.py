"""Marks in a scanned field that are not the number: what is left of a ruled line that ran off the cell,
strokes of the neighbouring cells at the field's edges, and writing on another line of the cell (a name, a
date, the printer's line at the foot of a register page). Works on the field's components (segment.py's
step 2), before the digits' height is taken from them. Numpy only, linear in the components."""

from __future__ import annotations

import numpy as np

THIN = 0.15  # a component no wider than this share of its height ...
LONG = 0.3  # ... and at least this share of the field's height is a piece of a ruled line
EDGE = 2  # pixels: a component this close to the field's edge (or a scan band) is a mark from beyond it
FIRST_LINE = 0.25  # the topmost line of writing with this share of the most ink a line holds is the number's
EDGE_DIGIT = 0.5  # ink at an edge, with nothing clear of the edges, is a digit only this share of the height
TALL = 0.6  # marks at least this share of the tallest sizeable one's height count as a line's writing
SIZEABLE = 0.2  # components with at least this share of the largest's ink count when choosing a line
RULE_OVER = 1.8  # a thin stroke this much taller than the tallest mark that is not thin: a rule's piece
RULE_IN_LINE = 1.2  # ... or this much taller, in line with another thin stroke above or below it
RULE_REFERENCE = 0.04  # marks shorter than this share of the field's height (specks) are no such reference
TICK_LEAN = 25  # degrees from upright: a thin stroke leaning back further is a tick, not a digit ...
TICK_THIN = 3.5  # ... where it is at least this many times longer than wide (its spread along and across)


def not_writing(labels: np.ndarray, boxes: list, areas: np.ndarray, outside: np.ndarray | None) -> set[int]:
    """Indices of components (0-based, as `boxes`) that are not part of the written number: ruled-line
    pieces, marks at the edges when other ink lies clear of them, and everything off the topmost line of
    writing that holds about as much ink as any."""
    height, width = labels.shape
    # A ruled line's piece runs off the top or the bottom of the cell; a "1" stands inside the field.
    dropped = {
        index
        for index, box in enumerate(boxes)
        if box.width <= THIN * box.height
        and box.height >= LONG * height
        and (box.top < EDGE or box.bottom > height - EDGE)
    }
    # Beside the field (its left and right edges, a scan band) lie the neighbouring cells; a tight crop's
    # digits may touch its top and bottom edges.
    side = np.zeros(labels.shape, bool)
    side[:, :EDGE], side[:, -EDGE:] = True, True
    if outside is not None:
        side |= _grown(outside, EDGE)
    ends = np.zeros(labels.shape, bool)
    ends[:EDGE], ends[-EDGE:] = True, True
    at_side = _touching(labels, side)
    at_end = _touching(labels, ends) - at_side
    at_edge = at_side | at_end
    inside = [index for index in range(len(boxes)) if index not in at_edge and index not in dropped]
    if any(boxes[index].height >= max(6, LONG / 5 * height) for index in inside):
        inside_boxes = [boxes[index] for index in inside]
        dropped |= at_side | {index for index in at_end if not _like_the_digits(boxes[index], inside_boxes)}
    else:  # nothing clear of the edges: only what fills the field's height there is kept (a tight crop)
        dropped |= {index for index in at_edge if boxes[index].height < EDGE_DIGIT * height}
    dropped |= _rule_pieces(boxes, height, dropped)
    return dropped | _off_the_line(boxes, areas, dropped, backward_ticks(labels, len(boxes)))


def _rule_pieces(boxes: list, height: int, dropped: set[int]) -> set[int]:
    """Thin upright strokes far taller than any mark that is not thin, or taller and in line with another
    thin stroke above or below them: what is left of a ruled line that stops inside the cell or is broken,
    which would otherwise set the digits' height and have the number dropped beside it. Where every mark
    is thin (a "1", an "11"), none goes."""
    floor = max(6, RULE_REFERENCE * height)
    thin = {
        index for index, box in enumerate(boxes) if box.width <= THIN * box.height and box.height >= floor
    }
    kept = [index for index in range(len(boxes)) if index not in dropped]
    others = [boxes[index].height for index in kept if index not in thin and boxes[index].height >= floor]
    if not others:
        return set()
    reference = max(others)
    return {
        index
        for index in thin
        if index not in dropped
        and (
            boxes[index].height >= RULE_OVER * reference
            or boxes[index].height >= RULE_IN_LINE * reference
            and any(_in_line(boxes[index], boxes[other]) for other in thin if other != index)
        )
    }


def _in_line(box, other) -> bool:
    """Whether two thin strokes share columns one above the other (the parts of one broken rule)."""
    shared = min(box.right, other.right) - max(box.left, other.left)
    return shared >= 0.5 * min(box.width, other.width) and (
        other.top >= box.bottom or other.bottom <= box.top
    )


def _like_the_digits(box, inside: list) -> bool:
    """Whether a mark at the edge stands on the line of the marks clear of the edges, about as tall as the
    tallest of them (a digit that the crop touches, not a neighbour's stroke or a band's shade)."""
    tallest = max(inside, key=lambda other: other.height)
    shared = min(box.bottom, tallest.bottom) - max(box.top, tallest.top)
    return 0.6 * tallest.height <= box.height <= 1.5 * tallest.height and shared >= 0.5 * tallest.height


def _touching(labels: np.ndarray, where: np.ndarray) -> set[int]:
    return set((np.unique(labels[where & (labels > 0)]) - 1).tolist())


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(radius):
        grown[1:] |= grown[:-1].copy()
        grown[:-1] |= grown[1:].copy()
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
    return grown


def backward_ticks(labels: np.ndarray, count: int) -> set[int]:
    """Components (0-based) that are one thin stroke leaning back by more than TICK_LEAN from upright (a "\\"
    tick a register's clerk put over a number): no digit is written so, though a "1" may lean a little."""
    rows, cols = np.nonzero(labels)
    which = labels[rows, cols] - 1
    pixels = np.bincount(which, minlength=count).astype(np.float64)
    ticks = set()
    moments = [np.bincount(which, weights=values, minlength=count) for values in (cols, rows)]
    mean_x, mean_y = (moment / np.maximum(pixels, 1) for moment in moments)
    dx, dy = cols - mean_x[which], rows - mean_y[which]
    xx, yy, xy = (np.bincount(which, weights=v, minlength=count) for v in (dx * dx, dy * dy, dx * dy))
    for index in np.flatnonzero(pixels >= 12):
        spread = np.array([[xx[index], xy[index]], [xy[index], yy[index]]])
        (small, large), vectors = np.linalg.eigh(spread)
        across, along = vectors[:, 1]  # the long axis: x and y parts (y grows downwards)
        lean = np.degrees(np.arctan2(abs(across), abs(along)))
        if large >= TICK_THIN**2 * max(small, 1e-9) and across * along > 0 and lean >= TICK_LEAN:
            ticks.add(int(index))
    return ticks


def _off_the_line(
    boxes: list, areas: np.ndarray, dropped: set[int], ticks: set[int] = frozenset()
) -> set[int]:
    """Components lying wholly above or below the line of writing with the most ink: lines are the rows
    joined by the sizeable components that overlap in height (sorted by top, one pass). Ticks (leaning
    back) hold no ink of a line: a line of them is not the number's."""
    kept = [index for index in range(len(boxes)) if index not in dropped]
    if not kept:
        return set()
    writing = [index for index in kept if index not in ticks] or kept
    largest = max(areas[index] for index in writing)
    sizeable = sorted(
        (index for index in kept if areas[index] >= SIZEABLE * largest), key=lambda index: boxes[index].top
    )
    # A line's ink is what its tall marks hold: a digit's strokes, not a printed line's small letters.
    tallest = max(boxes[index].height for index in sizeable if index in writing)
    lines: list[tuple[int, int, int]] = []  # top, bottom, ink
    for index in sizeable:
        box = boxes[index]
        ink = int(areas[index]) if box.height >= TALL * tallest and (index in writing) else 0
        if lines and box.top < lines[-1][1]:
            top, bottom, line_ink = lines[-1]
            lines[-1] = (top, max(bottom, box.bottom), line_ink + ink)
        else:
            lines.append((box.top, box.bottom, ink))
    # A cell's number is written first, at its top; names, dates and the printer's line come below it.
    most = max(line[2] for line in lines)
    top, bottom, _ = next(line for line in lines if line[2] >= FIRST_LINE * most)
    return {index for index in kept if boxes[index].bottom <= top or boxes[index].top >= bottom}
