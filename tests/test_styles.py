"""`lenet train --styles`: the style pool, its fonts, and mixing it into training exactly and resumably.

Whether the edits keep their labels is checked on real MNIST digits by a model that never saw them, in
bench/training/style_sheets.py (figures in the README); here, that the added strokes stay near the digit
and that the strokes left out are the ones meant (a gap in a 0's ring, a 5's bar).
Where the handwriting fonts are not installed, the test that needs them is skipped with the reason; CI
installs them and sets LENET_FONT_TESTS=required, so there it fails instead of skipping.
"""

import os

import numpy as np
import pytest
import torch
from helpers import digits_in_class_folders, invoke, stop_and_resume

from lenet_cli.core.config import TrainConfig
from lenet_cli.data.datasets import load_split
from lenet_cli.training import styles
from lenet_cli.training.fit import fit
from lenet_cli.training.style_data import SOURCES, as_canvas, make_style_pool, shrink, warped_digits
from lenet_cli.training.style_edits import ADDING_STROKES, EDITED_CLASSES, edit_digit, holes
from lenet_cli.training.style_fonts import INSTALL_HINT, HandFont, find_fonts

FONTS = find_fonts()
if FONTS.missing and os.environ.get("LENET_FONT_TESTS") == "required":
    raise RuntimeError(f"LENET_FONT_TESTS=required but {FONTS.missing_line()}")
needs_fonts = pytest.mark.skipif(not FONTS.paths, reason=f"no handwriting fonts here ({INSTALL_HINT})")
NOWHERE = (HandFont("Nowhere Hand", "fonts-nowhere", "OFL-1.1", ("nowhere-hand.ttf",)),)


@pytest.fixture
def small_pool(monkeypatch):
    monkeypatch.setattr(styles, "POOL_SIZE", 120)


@pytest.fixture(scope="module")
def stroke_digits():
    """Digit-like MNIST-form images: a slanted bar (a 1), a 7, a 2, a 9, a 5 and a 0 drawn as thick lines."""
    from PIL import Image, ImageDraw

    shapes = {
        1: [(15, 4), (12, 24)],
        7: [(6, 5), (21, 5), (12, 24)],
        2: [(7, 8), (14, 4), (20, 9), (7, 24), (21, 24)],
        9: [(19, 10), (15, 5), (10, 7), (10, 12), (15, 14), (19, 10), (18, 24)],
        5: [(20, 5), (10, 5), (9, 13), (15, 12), (19, 16), (18, 21), (13, 24), (8, 22)],
        0: [(14, 4), (19, 7), (20, 14), (19, 21), (14, 24), (9, 21), (8, 14), (9, 7), (14, 4)],
    }
    images = {}
    for label, points in shapes.items():
        picture = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(picture).line(points, fill=255, width=3, joint="curve")
        images[label] = np.asarray(picture)
    return images


def test_the_pool_is_the_same_for_the_same_seed_and_another_for_another(tiny_mnist):
    train = load_split("mnist", tiny_mnist, "train")
    images, labels = train.images.numpy(), train.labels.numpy().astype(np.int64)
    first = make_style_pool(images, labels, FONTS.paths, 90, seed=3)
    again = make_style_pool(images, labels, FONTS.paths, 90, seed=3)
    other = make_style_pool(images, labels, FONTS.paths, 90, seed=4)
    assert np.array_equal(first.images_u8, again.images_u8) and np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.images_u8, other.images_u8)
    assert first.images_u8.shape == (90, 28, 28) and first.images_u8.dtype == np.uint8
    counts = {name: int((first.sources == i).sum()) for i, name in enumerate(SOURCES)}
    assert sum(counts.values()) == 90 and min(counts["edits"], counts["scans"], counts["warped"]) > 0
    edited = set(first.labels[first.sources == SOURCES.index("edits")].tolist())
    assert set(ADDING_STROKES) <= edited <= set(EDITED_CLASSES)
    assert (counts["fonts"] > 0) == bool(FONTS.paths)


@pytest.mark.parametrize("label", ADDING_STROKES)
def test_edits_only_add_strokes_near_the_digit(stroke_digits, label):
    canvas = as_canvas(stroke_digits[label])
    for seed in range(5):
        edited = edit_digit(canvas, label, np.random.default_rng(seed))
        assert edited is not None
        added = (edited - canvas) > 0.3
        assert np.all(edited >= canvas - 1 / 255)  # nothing of the digit is taken away
        assert 10 < added.sum() < (canvas > 0.3).sum()  # strokes, less ink than the digit itself
        rows, cols = np.nonzero(canvas > 0.3)
        new_rows, new_cols = np.nonzero(added)
        margin = 0.35 * canvas.shape[0]
        assert new_rows.min() >= rows.min() - margin and new_rows.max() <= rows.max() + margin
        assert new_cols.min() >= cols.min() - margin and new_cols.max() <= cols.max() + margin


def test_a_zero_is_left_open_and_a_five_loses_its_bar_and_nothing_else(stroke_digits):
    zero, five = as_canvas(stroke_digits[0]), as_canvas(stroke_digits[5])
    assert holes(zero > 0.35) == 1
    opened = [edit_digit(zero, 0, np.random.default_rng(seed)) for seed in range(10)]
    assert sum(edit is not None for edit in opened) >= 5  # most gaps open the ring
    for edit in (edit for edit in opened if edit is not None):
        assert np.all(edit <= zero + 1 / 255)  # ink only taken away ...
        assert holes(edit > 0.35) == 0 and (edit > 0.35).sum() > 0.75 * (zero > 0.35).sum()  # ... a gap
    rows, _ = np.nonzero(five > 0.35)
    bar_rows = rows.min() + 0.35 * (rows.max() - rows.min())
    for seed in range(10):
        edit = edit_digit(five, 5, np.random.default_rng(seed))
        assert edit is not None and np.all(edit <= five + 1 / 255)
        lost_rows, lost_cols = np.nonzero((five > 0.35) & (edit <= 0.35))
        assert len(lost_rows) > 0 and lost_rows.max() <= bar_rows  # the bar, at the top ...
        stem = np.nonzero(five[rows.min() : int(bar_rows)] > 0.35)[1].min()
        assert lost_cols.min() > stem  # ... right of the stem, which stays


def test_warped_digits_keep_their_labels_and_small_scans_shrink(stroke_digits):
    digits = np.stack([stroke_digits[label] for label in (1, 7, 2)])
    warped, labels = warped_digits(digits, np.array([1, 7, 2]), 3, np.random.default_rng(0))
    assert sorted(labels.tolist()) == [1, 2, 7] and all(image.shape == (48, 48) for image in warped)
    assert all(0.02 < (image > 0.35).mean() < 0.5 for image in warped)  # still a digit's ink, not a blot
    small = shrink(as_canvas(stroke_digits[7]), 18)
    assert small.shape == (18, 18) and small.max() > 0.5


def test_an_edit_that_closes_a_loop_is_not_used():
    from PIL import Image, ImageDraw

    picture = Image.new("L", (28, 28), 0)  # a 7 whose hooked top comes down to where its bar goes
    ImageDraw.Draw(picture).line([(12, 15), (9, 5), (21, 5), (15, 24)], fill=255, width=3, joint="curve")
    hooked = as_canvas(np.asarray(picture))
    assert holes(hooked > 0.35) == 0
    edits = [edit_digit(hooked, 7, np.random.default_rng(seed)) for seed in range(20)]
    assert any(edit is None for edit in edits)  # the bar would have made a 9 of it
    assert all(holes(edit > 0.35) == 0 for edit in edits if edit is not None)
    ring = np.zeros((20, 20), bool)
    ring[4:16, 4:7] = ring[4:16, 13:16] = ring[4:7, 4:16] = ring[13:16, 4:16] = True
    assert holes(ring) == 1 and holes(np.zeros((5, 5), bool)) == 0


def test_missing_fonts_are_named_in_one_line_and_the_run_goes_on(
    tiny_mnist, tmp_path, monkeypatch, small_pool
):
    monkeypatch.setattr(styles, "find_fonts", lambda: find_fonts(NOWHERE))
    result = invoke(
        "train", "--styles", "--epochs", 1, "--data-dir", tiny_mnist, "--checkpoint-dir", tmp_path
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "Style digits: 120 (24 edits, 24 scans, 72 warped; 0 fonts, 0 files), 32 in every batch, augmented"
        in lines
    )
    assert (
        "--styles: fonts not found: Nowhere Hand (apt-get install fonts-nowhere); using the others" in lines
    )
    saved = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    assert saved["config"]["styles"] is True and saved["styles"]["fonts"] == []
    assert saved["styles"]["count"] == 120 and len(saved["styles"]["sha256"]) == 64


@needs_fonts
def test_found_fonts_write_digits_into_the_pool(tiny_mnist, tmp_path, small_pool):
    result = invoke(
        "train",
        "--styles",
        "--style-share",
        0.5,
        "--epochs",
        1,
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    start = next(line for line in result.output.splitlines() if line.startswith("Style digits:"))
    assert start.startswith("Style digits: 120 (24 fonts, 24 edits, 24 scans, 48 warped; ")
    assert start.endswith(", 64 in every batch, augmented")
    saved = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    assert saved["styles"]["fonts"] == FONTS.names


def test_styles_runs_are_reproducible_and_resume_bit_identically(
    tiny_mnist, tmp_path, monkeypatch, small_pool
):
    config = TrainConfig(
        epochs=2, batch_size=32, data_dir=str(tiny_mnist), checkpoint_dir=str(tmp_path), styles=True
    )
    straight = fit(config, run_outputs=False)
    again = fit(config, run_outputs=False)
    reference = torch.load(straight.checkpoint, weights_only=True)["model"]
    repeated = torch.load(again.checkpoint, weights_only=True)["model"]
    assert all(torch.equal(repeated[key], reference[key]) for key in reference)
    plain = torch.load(
        fit(config.with_changes(styles=False), run_outputs=False).checkpoint, weights_only=True
    )
    assert not all(torch.equal(plain["model"][key], reference[key]) for key in reference)

    final, kept = stop_and_resume(
        config, tmp_path, "styles"
    )  # 600 / (32 - 8) = 25 steps an epoch: mid-epoch 2
    assert all(torch.equal(final[key], reference[key]) for key in reference)

    monkeypatch.setattr(styles, "POOL_SIZE", 100)  # what other fonts on another machine would do
    with pytest.raises(
        Exception, match=r"the style digits made here differ from those .*stopped.pt was trained on"
    ):
        fit(config, resume_from=kept, run_outputs=False)


def test_styles_need_digits(tmp_path):
    result = invoke("train", "--styles", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "none")
    assert result.exit_code == 1
    assert result.output == "Error: --styles draws digits; it works with --dataset mnist, not fashion-mnist\n"


def test_styles_and_own_images_share_the_batch(tiny_mnist, tmp_path, small_pool):
    test = load_split("mnist", tiny_mnist, "test")
    mine = digits_in_class_folders(tmp_path / "mine", test.images[:40], test.labels[:40])
    result = invoke(
        "train",
        "--styles",
        "--images",
        mine,
        "--batch-size",
        32,
        "--epochs",
        1,
        "--data-dir",
        tiny_mnist,
        "--checkpoint-dir",
        tmp_path / "runs",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"Your images: 40 from {mine}, 8 in every batch, augmented" in lines
    assert any(
        line.startswith("Style digits: 120 (") and line.endswith(", 8 in every batch, augmented")
        for line in lines
    )
    saved = torch.load(tmp_path / "runs" / "run-1" / "last.pt", weights_only=True)
    assert saved["images"]["count"] == 40 and saved["styles"]["count"] == 120
