"""Faint strokes in a scanned field: the part of a stroke lighter than the threshold stays with the stroke it
runs on from (a pen running dry, a light first digit), while faint marks that touch no stroke stay paper and
a thick stroke's blurred edge does not fatten it. The fields are built here."""

import numpy as np

from lenet_cli.images.field import clean_field

PAPER, STRONG, FAINT = 230, 40, 150


def field_with(*strokes: tuple[slice, slice, int], seed: int = 0) -> np.ndarray:
    """A 120x120 field of grainy paper with rectangles of the given grey levels painted on it."""
    grey = np.full((120, 120), PAPER, np.float32)
    for rows, cols, level in strokes:
        grey[rows, cols] = level
    grey += np.random.default_rng(seed).normal(0, 3, grey.shape)
    return np.clip(grey, 0, 255).astype(np.uint8)


def test_the_faint_part_of_a_stroke_is_kept_with_its_strong_part():
    strong = (slice(15, 55), slice(30, 32), STRONG)
    faint_tail = (slice(55, 95), slice(30, 32), FAINT)
    strong_elsewhere = (slice(15, 95), slice(90, 92), STRONG)
    _, mask, _ = clean_field(field_with(strong, faint_tail, strong_elsewhere))
    assert mask[15:55, 30:32].all()
    assert mask[58:92, 30:32].mean() > 0.95  # the faint tail is ink, not paper
    assert mask[:, 40:85].sum() == 0  # the paper between stays paper


def test_a_faint_mark_that_touches_no_stroke_stays_paper():
    strong = (slice(15, 95), slice(30, 32), STRONG)
    faint_alone = (slice(40, 70), slice(70, 72), FAINT)
    _, mask, _ = clean_field(field_with(strong, faint_alone))
    assert mask[20:90, 30:32].all()
    assert mask[:, 60:80].sum() == 0


def test_a_thick_strokes_faint_edge_does_not_fatten_it():
    thick = (slice(20, 90), slice(40, 50), STRONG)
    edge = (slice(19, 91), slice(39, 51), FAINT)  # painted first: a pixel's ring round the stroke
    _, mask, _ = clean_field(field_with(edge, thick))
    assert mask[25:85, 40:50].all()
    assert not mask[25:85, 39].any() and not mask[25:85, 50].any()


def test_a_rules_blurred_edge_goes_with_it_and_a_stroke_on_it_stays():
    from lenet_cli.images.ruling import remove_lines

    ink = np.zeros((40, 120), np.float32)
    ink[20, :] = 0.8  # the rule
    ink[21:24, (np.arange(120) // 5) % 2 == 0] = 0.2  # its blurred edge in bulges, none a line itself
    ink[8:20, 30:32] = 0.9  # a stroke standing on it
    mask = ink > 0.1
    kept = remove_lines(mask, ink)
    assert not kept[20:24, :29].any() and not kept[20:24, 33:].any()  # no remnant to read as a stroke
    assert kept[8:18, 30:32].all()
