"""The reader's search (inference/number_path.py) on cuts and scores made up here: marks before the first
digit or after the last are left out only when the network reads them worse than leaving them out costs."""

import numpy as np
import pytest
from stroke_groups import side_by_side

from lenet_cli.core.errors import ImageError
from lenet_cli.images.segment import Segmentation
from lenet_cli.inference.number_path import SKIP_COST, best_path


def pieces(*widths_and_heights: tuple[int, int]) -> Segmentation:
    """Separate stroke groups side by side, 10 pixels apart, digits 40 pixels tall."""
    return side_by_side(*widths_and_heights, gap=10)


def scores(*confidences: float) -> np.ndarray:
    """One candidate a piece: its best class read at `confidence`, the rest sharing what is left."""
    rows = []
    for confidence in confidences:
        row = np.full(10, (1 - confidence) / 9)
        row[3] = confidence
        rows.append(np.log(row))
    return np.array(rows)


def test_a_mark_after_the_number_read_unsurely_is_left_out():
    segmentation = pieces((20, 40), (20, 40), (18, 30))
    runs = [(0, 1), (1, 2), (2, 3)]
    assert best_path(segmentation, runs, scores(0.99, 0.98, 0.1), None) == [0, 1]
    assert best_path(segmentation, runs, scores(0.99, 0.98, 0.9), None) == [0, 1, 2]


def test_a_small_digit_costs_as_much_to_leave_out_as_to_read():
    segmentation = pieces((20, 40), (12, 20))  # a 7 and a small 0
    runs = [(0, 1), (1, 2)]
    # The short penalty a candidate half the digits' height pays, as class_scores carries it.
    short = 0.5 * 10 * (0.75 - 0.5)
    read = scores(0.99, 0.5)  # read worse than the skip cost alone, better than it plus the short penalty
    read[1] -= short
    assert best_path(segmentation, runs, read, None) == [0, 1]


def test_without_skipping_every_piece_is_covered():
    segmentation = pieces((20, 40), (20, 40), (18, 30))
    runs = [(0, 1), (1, 2), (2, 3)]
    assert best_path(segmentation, runs, scores(0.99, 0.98, 0.1), None, skip_cost=None) == [0, 1, 2]


def test_a_wide_group_is_never_left_out():
    segmentation = pieces((20, 40), (60, 40))
    runs = [(0, 1), (1, 2)]
    assert best_path(segmentation, runs, scores(0.99, np.exp(-SKIP_COST - 3)), None) == [0, 1]


def test_a_length_that_no_path_has_is_an_error():
    segmentation = pieces((20, 40), (20, 40))
    with pytest.raises(ImageError, match="could not find 3 digits"):
        best_path(segmentation, [(0, 1), (1, 2)], scores(0.99, 0.99), (3, 3))
