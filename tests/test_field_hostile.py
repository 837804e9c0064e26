"""Fields built to make cutting slow (issue 31): many pieces, broken strokes, touching strokes, long thin
lines. Each is read or refused with a clear error, and the work is capped: no field is cut into more than
MAX_CUT_PIECES pieces, so the reader never asks the network about more than a bounded number of
candidates, whatever the image. (The time each takes is measured in bench/reading/hostile_fields.py.)"""

import time

import numpy as np
import pytest

from lenet_cli.core.errors import ImageError
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.images.segment import MAX_CUT_PIECES, MAX_PIECES


def broken_strokes(count: int, top: int, bottom: int, rng) -> np.ndarray:
    """`count` short vertical strokes, each broken in two by a 1-2 pixel gap."""
    field = np.full((60, count * 6 + 10), 255, np.uint8)
    for index in range(count):
        x, gap = 5 + index * 6, int(rng.integers(1, 3))
        field[10 : 10 + top, x : x + 2] = 0
        field[10 + top + gap : 10 + top + gap + bottom, x : x + 2] = 0
    return field


def touching_strokes(count: int, rng) -> np.ndarray:
    """`count` slanted strokes that each touch the next: one long component to cut."""
    field = np.full((50, count * 4 + 20), 255, np.uint8)
    for index in range(count):
        x = 5 + index * 4 + int(rng.integers(0, 2))
        for row in range(8, 42):
            field[row, x + (row - 8) // 6 : x + (row - 8) // 6 + 2] = 0
    return field


def long_lines(rng) -> np.ndarray:
    """Long thin lines across and down, a few pixels apart, slanted and broken."""
    field = np.full((160, 900), 255, np.uint8)
    for row in range(5, 155, 4):
        columns = np.arange(900)
        field[np.clip(row + columns // 300, 0, 159), columns] = 0
    field[:, ::7] = 0
    field[rng.random(field.shape) < 0.02] = 255
    return field


def speckle(rng) -> np.ndarray:
    return np.where(rng.random((120, 1200)) < 0.03, 0, 255).astype(np.uint8)


def hostile_fields() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(31)
    return [
        ("150 broken strokes", broken_strokes(150, 12, 12, rng)),
        ("150 broken strokes, uneven halves", broken_strokes(150, 8, 14, rng)),
        ("300 broken strokes", broken_strokes(300, 10, 10, rng)),
        ("200 touching strokes", touching_strokes(200, rng)),
        ("long lines", long_lines(rng)),
        ("speckle", speckle(rng)),
    ]


@pytest.mark.parametrize(("name", "field"), hostile_fields(), ids=[name for name, _ in hostile_fields()])
def test_a_hostile_field_is_cut_within_the_caps_or_refused(name, field):
    start = time.perf_counter()
    try:
        cut = cut_into_candidates(field)
    except ImageError as error:
        assert str(error).startswith("no ")  # "no number found (...)", "no digit found (...)"
    else:
        assert cut.segmentation.count <= MAX_CUT_PIECES
        assert len(cut.runs) <= MAX_CUT_PIECES * MAX_PIECES
    # Generous: about a tenth of a second on a quiet machine; a cubic step took seconds.
    assert time.perf_counter() - start < 5.0, name
