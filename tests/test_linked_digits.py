"""The cuts offered where digits are linked or written small: two digits written in one stroke are offered a
cut where they meet, a digit written small beside another is kept, and a stroke is never read twice. The
fields are built here."""

import json

import numpy as np
import pytest
from drawing import draw_number
from helpers import invoke
from PIL import Image, ImageDraw

from lenet_cli.images.segment import Box, Segmentation, candidates, segment
from lenet_cli.inference.number_path import NARROW_CUT_PENALTY, best_path


def read(path) -> str:
    result = invoke("read", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["readings"][0]["number"]


def ring(mask: np.ndarray, top: int, left: int, height: int, width: int, pen: int = 3) -> None:
    mask[top : top + height, left : left + width] = True
    mask[top + pen : top + height - pen, left + pen : left + width - pen] = False


def test_a_narrow_linked_pair_is_offered_a_cut_where_it_meets():
    # "11" in one stroke: two uprights 30 pixels tall joined at the top, 16 pixels wide in all (narrower
    # than the 0.6 of a digit that gets a cut in every stretch).
    mask = np.zeros((50, 60), bool)
    mask[10:40, 20:24] = True
    mask[10:40, 32:36] = True
    mask[10:13, 20:36] = True
    segmentation = segment(mask)
    assert segmentation.count == 2
    assert len(set(segmentation.groups)) == 1  # one stroke, cut in two
    left, right = segmentation.boxes
    assert left.left == 20 and right.right == 36 and left.right <= right.left + 1
    assert (0, 1) in candidates(segmentation) and (0, 2) in candidates(segmentation)


def test_a_group_narrower_than_two_strokes_is_not_cut():
    mask = np.zeros((50, 60), bool)
    ring(mask, 10, 20, 30, 10)  # a "0" a third of its height wide
    assert segment(mask).count == 1


@pytest.mark.parametrize("join", ["top", "bottom"])
def test_two_ones_written_in_one_stroke_are_read_as_two_and_one_zero_as_one(tmp_path, join):
    # Two uprights 40 pixels tall joined at the top or the foot: 17 pixels wide in all.
    linked = Image.new("L", (80, 80), 240)
    pen = ImageDraw.Draw(linked)
    for x in (30, 44):
        pen.line([(x, 20), (x - 2, 60)], fill=30, width=3)
    y = 21 if join == "top" else 59
    pen.line([(29, y), (43, y)], fill=30, width=3)
    linked.save(tmp_path / "linked.png")
    single, _ = draw_number("0", digit_height=40, pen=3)
    single.save(tmp_path / "single.png")
    assert read(tmp_path / "linked.png") == "11"
    assert read(tmp_path / "single.png") == "0"  # its halves, each like a "1", are not read as two digits


def test_a_digit_written_small_beside_another_is_kept_and_specks_are_not():
    mask = np.zeros((70, 200), bool)
    mask[10:50, 30:37] = True  # a "1" 40 pixels tall
    ring(mask, 32, 41, 16, 14)  # a "0" written small right beside it: a digit
    ring(mask, 32, 150, 16, 14)  # the same mark far from any digit: not one
    mask[34:48, 64:66] = True  # a thin short stroke beside the digits: not one either
    segmentation = segment(mask)
    assert [box.xywh() for box in segmentation.boxes] == [(30, 10, 7, 40), (41, 32, 14, 16)]
    assert sorted(box.left for box in segmentation.dropped) == [64, 150]


@pytest.mark.parametrize(
    ("groups", "width", "read"), [([0, 0], 10, [2]), ([0, 1], 10, [0, 1]), ([0, 0], 16, [0, 1])]
)
def test_a_narrow_stroke_is_read_as_two_digits_only_where_the_network_is_surer_by_the_penalty(
    groups, width, read
):
    # Two pieces side by side, 40 pixels tall; each read as a digit at 0.9, both as one at 0.5 (less than
    # two digits at 0.9 by under NARROW_CUT_PENALTY). Cut from one stroke under 0.6 of a digit wide, they are
    # read as one digit; as two strokes, or cut from a wide one, as two.
    boxes = [Box(0, 0, width, 40), Box(width, 0, 2 * width, 40)]
    segmentation = Segmentation(np.zeros((40, 2 * width), np.int32), boxes, 40.0, groups)
    runs = [(0, 1), (1, 2), (0, 2)]
    scores = np.log(np.full((3, 10), 0.01))
    scores[[0, 1, 2], [1, 1, 0]] = np.log([0.9, 0.9, 0.5])
    assert 2 * np.log(0.9) - NARROW_CUT_PENALTY < np.log(0.5) < 2 * np.log(0.9)
    assert best_path(segmentation, runs, scores, None, skip_cost=None) == read
