"""Connected components of a field's ink and their boxes (segment.py's step 2). Numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class NotANumber(ValueError):
    """The field holds no written number that can be cut into digits."""


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int  # exclusive
    bottom: int  # exclusive

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def union(self, other: Box) -> Box:
        return Box(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def xywh(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.width, self.height)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components: int32 labels (0 background, 1..n) and n. Works on horizontal runs: each run
    is joined to the runs of the next row that touch it (diagonals included), and the joined runs take the
    smallest index among them by repeated propagation with pointer jumping, all in numpy."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # exclusive; row-major order matches the starts'
    count = len(starts)
    if count == 0:
        return np.zeros(mask.shape, np.int32), 0
    # Keys that order runs row by row: a run [s, e) of the next row touches run i when s <= e_i and e >= s_i.
    stride = width + 2
    start_keys, end_keys = rows * stride + starts, rows * stride + ends
    below = (rows + 1) * stride
    first = np.searchsorted(end_keys, below + starts, side="left")
    last = np.searchsorted(start_keys, below + ends, side="right")
    touching = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(count), touching)
    lower = first[upper] + np.arange(len(upper)) - np.repeat(np.cumsum(touching) - touching, touching)
    component = np.arange(count)
    while True:
        smaller = np.minimum(component[upper], component[lower])
        joined = component.copy()
        np.minimum.at(joined, upper, smaller)
        np.minimum.at(joined, lower, smaller)
        joined = joined[joined]
        if np.array_equal(joined, component):
            break
        component = joined
    _, component = np.unique(component, return_inverse=True)
    run_of_pixel = np.cumsum((edges[:, :-1] == 1).ravel()).reshape(height, width) - 1
    labels = np.where(mask, component[np.maximum(run_of_pixel, 0)] + 1, 0).astype(np.int32)
    return labels, int(component.max()) + 1


def boxes_of(labels: np.ndarray, count: int) -> list[Box]:
    """The box of each label 1..count."""
    rows, cols = np.nonzero(labels)
    which = labels[rows, cols] - 1
    extents = []
    for values, reduce, empty in (
        (cols, np.minimum, labels.shape[1]),
        (rows, np.minimum, labels.shape[0]),
        (cols, np.maximum, -1),
        (rows, np.maximum, -1),
    ):
        extent = np.full(count, empty)
        reduce.at(extent, which, values)
        extents.append(extent.tolist())
    return [Box(left, top, right + 1, bottom + 1) for left, top, right, bottom in zip(*extents, strict=True)]
