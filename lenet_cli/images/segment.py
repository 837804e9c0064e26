"""Cut a written number into candidate pieces: heuristic over-segmentation, as LeNet-5's 1998 paper reads
cheque amounts and the ICFHR 2014 digit-string entries read theirs.

From the cleaned ink of the whole field:
1. drop ruled lines: ink in horizontal runs longer than the field is tall (underlines, the top and bottom
   of a printed box) and vertical runs nearly as tall as the field (its sides);
2. connected components of what is left (8-neighbours); the digits' height is the tallest sizeable one;
3. drop marks that are not digits: specks, dots and commas (small, low in the band), dashes (flat, clear
   of every digit); merge broken strokes (a piece lying over or under another);
4. split a component wider than one digit where few strokes cross it (minima of its column profile),
   along the slant that crosses least ink: these are only candidate cuts, the reader chooses;
5. order the pieces left to right. A candidate digit is a run of 1..k consecutive pieces narrow enough
   to be one digit; the reader scores every candidate and takes the best path through the cuts.

Numpy only: the network is the reader's business.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from lenet_cli.images.clutter import not_writing
from lenet_cli.images.components import Box, NotANumber, boxes_of, label_components
from lenet_cli.images.ruling import remove_lines
from lenet_cli.images.seams import split_lines
from lenet_cli.images.strokes import group_box, join_broken_strokes, merge_broken, overlaps_any

MIN_DIGIT_HEIGHT = 6  # pixels: no digit is read from marks smaller than this ...
SMALLEST_SHARE = 0.04  # ... or than this share of the field's height (a number may be small in its cell)
WIDEST_DIGIT = 1.5  # digit heights: no candidate digit is wider
MAX_PIECES = 7  # a digit is at most this many consecutive pieces (a broken stroke, a split)
MAX_CUT_PIECES = 120  # a field cut into more pieces than this holds more than a written number
SMALL_MARK = 0.6  # digit heights: a shorter mark centred above or below the digits' band is not a digit
SPECK = 0.5  # digit heights: a mark shorter and narrower than this, on its own, is a speck or a dot ...
SMALLEST_DIGIT = 0.3  # ... unless it is at least this tall and wide ...
BESIDE = 0.5  # ... and this close beside a mark of a digit's height (a digit written small)


@dataclass
class Segmentation:
    """The pieces of a field, left to right: `pieces[i]` is piece i's pixels in `labels` (value i + 1)."""

    labels: np.ndarray  # int32 (H, W): 0 for paper and dropped marks, i + 1 for piece i
    boxes: list[Box]
    digit_height: float
    groups: list[int] = field(
        default_factory=list
    )  # the stroke group (connected or broken) each piece is cut from
    dropped: list[Box] = field(default_factory=list)  # marks that were not taken for digits
    _rightmost: list[int] = field(
        default_factory=list, repr=False
    )  # the furthest right edge up to each piece
    _spans: dict[tuple[int, int], Box] = field(default_factory=dict, repr=False)  # asked for many times

    @property
    def count(self) -> int:
        return len(self.boxes)

    def span(self, start: int, stop: int) -> Box:
        """The box round pieces start..stop-1."""
        box = self._spans.get((start, stop))
        if box is None:
            box = (
                self.boxes[start]
                if stop - start == 1
                else self.span(start, stop - 1).union(self.boxes[stop - 1])
            )
            self._spans[(start, stop)] = box
        return box

    def group_boxes(self) -> dict[int, Box]:
        """The box round each stroke group's pieces, by group."""
        boxes: dict[int, Box] = {}
        for group, box in zip(self.groups, self.boxes, strict=True):
            boxes[group] = boxes[group].union(box) if group in boxes else box
        return boxes

    def joins(self, start: int, stop: int) -> int:
        """How many separate stroke groups pieces start..stop-1 come from, less one."""
        return len(set(self.groups[start:stop])) - 1

    def gap_before(self, index: int) -> float:
        """Blank space between piece `index` and everything left of it (negative when they overlap)."""
        if len(self._rightmost) != len(self.boxes):
            self._rightmost = list(itertools.accumulate((box.right for box in self.boxes), max))
        return self.boxes[index].left - self._rightmost[index - 1]


def segment(
    mask: np.ndarray, ink: np.ndarray | None = None, outside: np.ndarray | None = None
) -> Segmentation:
    """Pieces of the field whose ink is `mask` (bool, True on ink); `ink` (its grey levels) weighs the
    column profiles where given; `outside` (bool) marks what lies beyond the field (a scan band)."""
    weights = ink if ink is not None else mask.astype(np.float32)
    labels, count = label_components(remove_lines(mask, ink))
    if count == 0:
        return Segmentation(np.zeros(mask.shape, np.int32), [], 0.0)
    boxes = boxes_of(labels, count)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    clutter = not_writing(labels, boxes, areas, outside)
    if clutter:
        labels, count, boxes, areas = _without(labels, boxes, clutter)
        if count == 0:
            return Segmentation(np.zeros(mask.shape, np.int32), [], 0.0)
    sizeable = [box.height for box, area in zip(boxes, areas, strict=True) if area >= 0.2 * areas.max()]
    digit_height = float(max(sizeable))
    if digit_height < max(MIN_DIGIT_HEIGHT, SMALLEST_SHARE * mask.shape[0]):  # specks, dots: no digit at all
        return Segmentation(np.zeros(mask.shape, np.int32), [], digit_height)
    labels, count, specks = join_broken_strokes(labels, boxes, digit_height)
    boxes = boxes_of(labels, count)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    band_top = float(np.median([box.top for box in boxes if box.height >= 0.6 * digit_height]))

    keep, dropped = _marks_kept(boxes, areas, digit_height, band_top)
    groups = merge_broken(keep, boxes, digit_height)
    return _paint(mask.shape, groups, boxes, labels, weights, digit_height, specks + dropped)


def _marks_kept(
    boxes: list[Box], areas: np.ndarray, digit_height: float, band_top: float
) -> tuple[list[int], list[Box]]:
    """The marks that may be digits (indices into `boxes`), and the boxes of those that are not."""
    band_bottom = band_top + digit_height
    keep, dropped = [], []
    for index, box in enumerate(boxes):
        small = box.height < SPECK * digit_height and box.width < SPECK * digit_height
        on_its_own = (small or box.height < 0.3 * digit_height) and not overlaps_any(
            index, boxes, areas, digit_height
        )
        if small and on_its_own and not _small_digit(index, boxes, digit_height):
            dropped.append(box)  # a speck, a dot, a comma, a short dash: small and on its own
        elif box.height < 0.3 * digit_height and on_its_own:
            dropped.append(box)  # a flat stroke clear of the digits: a dash
        elif box.bottom <= band_top + 0.15 * digit_height or box.top >= band_bottom - 0.15 * digit_height:
            dropped.append(box)  # above or below the digits' band
        elif box.height < SMALL_MARK * digit_height and not band_top <= _middle(box) <= band_bottom:
            dropped.append(box)  # a small mark centred off the band: a cross under the number, a tick over it
        else:
            keep.append(index)
    return keep, dropped


def _small_digit(index: int, boxes: list[Box], digit_height: float) -> bool:
    """Whether a mark under SPECK of the digits' height is a digit written small (a "0" after a "7"): at
    least SMALLEST_DIGIT of that height both ways, and close beside a mark of a digit's height."""
    box = boxes[index]
    if min(box.width, box.height) < SMALLEST_DIGIT * digit_height:
        return False
    return any(
        other.height >= 0.6 * digit_height
        and max(other.left - box.right, box.left - other.right) <= BESIDE * digit_height
        for other in boxes
    )


def _without(labels: np.ndarray, boxes: list[Box], dropped: set[int]):
    """Components relabelled without the `dropped` ones: labels, count, boxes, areas."""
    mapping = np.zeros(len(boxes) + 1, np.int32)
    kept = [index for index in range(len(boxes)) if index not in dropped]
    mapping[[index + 1 for index in kept]] = np.arange(1, len(kept) + 1)
    labels = mapping[labels]
    return (
        labels,
        len(kept),
        [boxes[index] for index in kept],
        np.bincount(labels.ravel(), minlength=len(kept) + 1)[1:],
    )


def _middle(box: Box) -> float:
    return (box.top + box.bottom) / 2


def _centre(group: list[int], boxes: list[Box]) -> float:
    return sum((boxes[i].left + boxes[i].right) / 2 for i in group) / len(group)


def _paint(shape, groups, boxes, labels, weights, digit_height, dropped) -> Segmentation:
    """The pieces: each group of components, cut along its split lines, numbered left to right."""
    pieces = np.zeros(shape, np.int32)
    piece_boxes: list[Box] = []
    piece_groups: list[int] = []
    for group_number, group in enumerate(sorted(groups, key=lambda g: _centre(g, boxes))):
        box = group_box(group, boxes)
        window = (slice(box.top, box.bottom), slice(box.left, box.right))
        in_window = labels[window]
        member = in_window == group[0] + 1 if len(group) == 1 else np.isin(in_window, [i + 1 for i in group])
        lines = [
            line[:, None] - box.left for line in split_lines(member, weights[window], box.left, digit_height)
        ]
        # Part k holds the group's pixels between line k-1 and line k, found within the columns those
        # lines reach (so a wide group costs its area once, not once a part).
        for left_line, right_line in zip([None, *lines], [*lines, None], strict=True):
            first = 0 if left_line is None else max(0, int(left_line.min()))
            last = box.width if right_line is None else min(box.width, int(np.ceil(right_line.max())) + 1)
            columns = np.arange(first, last, dtype=np.float32)[None, :]
            part = member[:, first:last].copy()
            if left_line is not None:
                part &= columns >= left_line
            if right_line is not None:
                part &= columns < right_line
            if not part.any():
                continue
            rows, cols = np.nonzero(part)
            pieces[window][:, first:last][part] = len(piece_boxes) + 1
            piece_groups.append(group_number)
            piece_boxes.append(
                Box(
                    box.left + first + int(cols.min()),
                    box.top + int(rows.min()),
                    box.left + first + int(cols.max()) + 1,
                    box.top + int(rows.max()) + 1,
                )
            )
            if len(piece_boxes) > MAX_CUT_PIECES:
                raise NotANumber(f"more than {MAX_CUT_PIECES} pieces: too many for a written number")
    order = sorted(range(len(piece_boxes)), key=lambda i: (piece_boxes[i].left + piece_boxes[i].right) / 2)
    relabel = np.zeros(len(piece_boxes) + 1, np.int32)
    for new, old in enumerate(order):
        relabel[old + 1] = new + 1
    return Segmentation(
        relabel[pieces],
        [piece_boxes[i] for i in order],
        digit_height,
        [piece_groups[i] for i in order],
        dropped,
    )


def candidates(segmentation: Segmentation, max_pieces: int = MAX_PIECES) -> list[tuple[int, int]]:
    """(start, stop) runs of consecutive pieces that could be one digit: at most `max_pieces`, no wider
    than a digit and a half, without a gap wider than a third of a digit inside."""
    height = segmentation.digit_height
    runs = []
    for start in range(segmentation.count):
        for stop in range(start + 1, min(segmentation.count, start + max_pieces) + 1):
            if stop - start > 1 and segmentation.gap_before(stop - 1) > 0.35 * height:
                break
            if stop - start > 1 and segmentation.span(start, stop).width > WIDEST_DIGIT * height:
                break
            runs.append((start, stop))
    return runs
