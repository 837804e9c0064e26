"""What `lenet train --numbers` learns from a misreading: the reader's own path through the cuts (as the
reader's search takes it), the candidates where it leaves the label's path, and the cheaper end marks the
alignment may leave out (a cross after a number is spelled as no digit, not folded into the last digit)."""

import numpy as np
import pytest
from stroke_groups import side_by_side

from lenet_cli.images.segment import Segmentation
from lenet_cli.inference.alignment import read_through, spell, wrong_turns
from lenet_cli.inference.number_path import best_path
from lenet_cli.training.number_cuts import SPELLING_SKIP_COST, end_costs


def pieces(*widths_and_heights: tuple[int, int]) -> Segmentation:
    """Separate stroke groups side by side, 4 pixels apart, digits 40 pixels tall."""
    return side_by_side(*widths_and_heights, gap=4)


def all_runs(count: int) -> list[tuple[int, int]]:
    return [(start, stop) for start in range(count) for stop in range(start + 1, min(count, start + 2) + 1)]


@pytest.mark.parametrize("seed", range(6))
def test_the_reader_path_from_runs_and_end_costs_is_the_reader_search(seed):
    rng = np.random.default_rng(seed)
    segmentation = pieces((20, 40), (8, 40), (20, 40), (10, 14))  # the last: a small cross
    runs = all_runs(4)
    scores = np.log(rng.dirichlet(np.full(10, 0.3), size=len(runs)))
    expected = best_path(segmentation, runs, scores, None)
    assert read_through(runs, 4, scores, end_costs(segmentation)) == expected
    assert read_through(runs, 4, scores) == best_path(segmentation, runs, scores, None, skip_cost=None)


def test_the_wrong_turns_are_the_reader_candidates_off_the_label_path():
    # a 1, then a 6 cut in two: pieces of widths 20, 8 and 20
    runs = all_runs(3)  # (0,1) (0,2) (1,2) (1,3) (2,3)
    scores = np.full((len(runs), 10), -6.0)
    scores[runs.index((0, 1)), 1] = -0.01
    scores[runs.index((1, 2)), 1] = -0.2  # the 6's left stroke read as a second 1 ...
    scores[runs.index((2, 3)), 6] = -0.1  # ... and the rest as a 6
    scores[runs.index((1, 3)), 6] = -0.5  # the whole 6, less sure
    read = read_through(runs, 3, scores)
    assert [runs[index] for index in read] == [(0, 1), (1, 2), (2, 3)]  # "116"
    spelled = spell(runs, 3, scores, "16")
    assert [runs[index] for index in spelled] == [(0, 1), (1, 3)]
    assert [runs[index] for index in wrong_turns(runs, read, spelled)] == [(1, 2), (2, 3)]
    assert wrong_turns(runs, spelled, spelled) == []


def test_the_alignment_leaves_a_cross_out_cheaper_than_the_reader_does():
    segmentation = pieces((70, 40), (20, 40), (20, 40), (14, 16))  # a wide scrawl, two digits, a cross
    reader_leading, reader_trailing = end_costs(segmentation)
    leading, trailing = end_costs(segmentation, SPELLING_SKIP_COST)
    assert trailing[3] == pytest.approx(SPELLING_SKIP_COST)
    assert trailing[3] < reader_trailing[3]
    assert trailing[1] == pytest.approx(3 * SPELLING_SKIP_COST)
    assert trailing[4] == 0.0 and leading[0] == 0.0
    assert leading[1] == reader_leading[1] == float("inf")  # a group wider than a digit is never left out
    # The label "41" through "4", "1" and the cross: the cross is left out, not folded into the 1.
    runs = [(0, 1), (1, 2), (2, 3), (1, 3)]
    scores = np.full((4, 10), -4.0)
    scores[0, 4], scores[1, 1], scores[3, 1] = -0.05, -0.05, -0.4  # "1+" read as a 1, a little less sure
    cells = pieces((20, 40), (20, 40), (14, 16))
    assert [runs[i] for i in spell(runs, 3, scores, "41", end_costs(cells, SPELLING_SKIP_COST))] == [
        (0, 1),
        (1, 2),
    ]
    assert [runs[i] for i in spell(runs, 3, scores, "41", end_costs(cells))] == [(0, 1), (1, 3)]
