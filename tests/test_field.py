"""lenet read on a number as a register scan gives it: a small number somewhere in a ruled cell, lines
crossing it, a black band where the scan ran past the page, marks of the neighbouring cells at the edges,
speckle. The cells are built here (no scan is committed)."""

import json

import numpy as np
import pytest
from drawing import draw_number
from helpers import invoke
from PIL import Image

from lenet_cli.images.clutter import backward_ticks
from lenet_cli.images.segment import Box, segment


def ruled_cell(text: str, seed: int = 0, band: int = 40, at: tuple[int, int] = (70, 45)) -> Image.Image:
    """`text` written 24 pixels tall into a 160x140 register cell with faint, broken, slightly slanted
    ruled lines (one through the digits), a vertical rule near the right edge, a black scan band on the
    left, a neighbour's stroke at the right edge and speckle."""
    rng = np.random.default_rng(seed)
    cell = np.full((160, 140), 235, np.float32)
    number, _ = draw_number(text, digit_height=24, pen=2, ink=40, paper=235)
    written = np.asarray(number, np.float32)
    height, width = written.shape
    x, y = at
    region = cell[y : y + height, x : x + width]
    np.minimum(region, written[: region.shape[0], : region.shape[1]], out=region)
    for row in (20, 44 + 12 + 12, 95, 125):  # the second runs through the middle of the digits
        columns = np.arange(band, 140)
        rows = row + (columns - band) // 60  # slanted: a pixel down every 60 columns
        line = np.full(len(columns), 150.0)
        line[rng.random(len(columns)) < 0.05] = 235  # broken here and there
        cell[rows, columns] = np.minimum(cell[rows, columns], line)
    cell[:, 128:130] = np.minimum(cell[:, 128:130], 120)  # the cell's vertical rule
    cell[60:75, 136:140] = 50  # a stroke of the next cell's writing
    cell[:, :band] = 15  # the scan ran past the page
    speckle = rng.random(cell.shape) < 0.002
    cell[speckle] = 90
    return Image.fromarray(np.clip(cell, 0, 255).astype(np.uint8))


def read(path) -> dict:
    result = invoke("read", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["readings"][0]


@pytest.mark.parametrize(("text", "at"), [("47", (70, 45)), ("305", (42, 75)), ("8", (95, 30))])
def test_a_number_in_a_ruled_scanned_cell_is_read(tmp_path, text, at):
    path = tmp_path / "cell.png"
    ruled_cell(text, at=at).save(path)
    reading = read(path)
    assert reading["number"] == text
    for digit in reading["digits"]:  # each digit found where the number was written, not on the band
        x, y, w, h = digit["box"]
        assert x >= at[0] - 2 and at[1] - 2 <= y and y + h <= at[1] + 24 + 24 + 4


def test_a_cell_with_only_lines_band_and_marks_has_no_number(tmp_path):
    path = tmp_path / "empty.png"
    ruled_cell("", band=40).save(path)
    result = invoke("read", str(path), "--json")
    assert result.exit_code == 1
    assert "error" in json.loads(result.stdout)["readings"][0]


def test_a_band_over_half_the_scan_does_not_turn_the_polarity(tmp_path):
    path = tmp_path / "half.png"
    ruled_cell("47", band=75, at=(80, 45)).save(path)
    assert read(path)["number"] == "47"


def test_a_small_trailing_zero_is_a_digit(tmp_path):
    number, _ = draw_number("7", digit_height=40, pen=3)
    zero, _ = draw_number("0", digit_height=22, pen=3)
    field = Image.new("L", (number.width + zero.width, number.height), 240)
    field.paste(number, (0, 0))
    field.paste(zero, (number.width - 10, number.height - zero.height - 10))
    path = tmp_path / "seventy.png"
    field.save(path)
    assert read(path)["number"] == "70"


def test_a_short_vertical_rule_does_not_set_the_digits_height(tmp_path):
    # A piece of a ruled line that stops inside the cell, far taller than the small number beside it.
    cell = np.asarray(ruled_cell("47", at=(70, 45)), np.float32).copy()
    cell[30:150, 56:58] = 60
    path = tmp_path / "rule.png"
    Image.fromarray(cell.astype(np.uint8)).save(path)
    assert read(path)["number"] == "47"


def test_a_cross_under_the_number_is_not_a_digit():
    # Two rings 30 pixels tall, and a cross beside them whose middle lies below their line.
    mask = np.zeros((80, 110), bool)
    for left in (20, 46):
        mask[20:50, left : left + 16] = True
        mask[23:47, left + 3 : left + 13] = False
    mask[50:52, 72:88] = True  # the cross: its top within the digits' band, its middle below it
    mask[44:58, 79:81] = True
    segmentation = segment(mask)
    rings: dict[int, Box] = {}  # each ring may be offered a cut in its middle: its pieces' box
    for group, box in zip(segmentation.groups, segmentation.boxes, strict=True):
        rings[group] = rings[group].union(box) if group in rings else box
    assert [box.xywh() for box in rings.values()] == [(20, 20, 16, 30), (46, 20, 16, 30)]
    assert Box(72, 44, 88, 58) in segmentation.dropped


def test_a_tick_over_the_number_is_not_its_line(tmp_path):
    # A clerk's bold tick leaning back, alone on a line above the number: not the number's line.
    cell = np.asarray(ruled_cell("47", at=(70, 50)), np.float32).copy()
    for row in range(22):
        cell[6 + row, 60 + row : 64 + row] = 10
    path = tmp_path / "tick.png"
    Image.fromarray(cell.astype(np.uint8)).save(path)
    assert read(path)["number"] == "47"


def test_only_thin_strokes_leaning_back_are_ticks():
    labels = np.zeros((40, 120), np.int32)
    for row in range(30):
        labels[5 + row, 5 + row : 8 + row] = 1  # "\" at 45 degrees: a tick
        labels[5 + row, 70 - row : 73 - row] = 2  # "/" : a forward-leaning stroke, as a 1 or a 7's stem
        labels[5 + row, 80 + row // 6 : 83 + row // 6] = 3  # a 1 leaning back a little
    labels[5:35, 95:115] = 4  # a blob
    assert backward_ticks(labels, 4) == {0}
