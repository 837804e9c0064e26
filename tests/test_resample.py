"""The one resampler: torch's bilinear filter (with and without antialias) to float32 rounding, on the
sizes preprocessing meets, and the same 28x28 input whether or not torch is loaded."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenet_cli.images.resample import resample

# The filter is the same; torch finds source positions and weights in float32 (off by up to a few
# float32 steps of the position on a 400-pixel side) and sums in its own order.
SAME_FILTER = 1e-4


def torch_resample(image, size, antialias):
    tensor = torch.from_numpy(image)[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=antialias)[
        0, 0
    ].numpy()


def sizes(rng, antialias, count):
    """(input, output) sizes: shrinking to digit size with antialias, else growing a background grid,
    one-pixel sides and unchanged sides."""
    for index in range(count):
        small = index % 2 == 0
        shape = (
            (int(rng.integers(1, 40)), int(rng.integers(1, 40))) if small else tuple(rng.integers(1, 300, 2))
        )
        if antialias:
            size = tuple(rng.integers(1, 30, 2))
        else:
            size = tuple(rng.integers(1, 64, 2)) if index % 3 else tuple(rng.integers(40, 400, 2))
        if index % 7 == 0:
            size = (shape[0], size[1])
        if index % 11 == 0:
            size = (size[0], shape[1])
        yield tuple(map(int, shape)), tuple(map(int, size))


@pytest.mark.parametrize("antialias", [False, True])
def test_the_filter_is_torchs_bilinear_filter(antialias):
    rng = np.random.default_rng(24)
    for shape, size in sizes(rng, antialias, 300):
        image = rng.random(shape, dtype=np.float32)
        if rng.random() < 0.3:  # flat ink on black, as a cropped digit
            image = np.where(image > 0.5, np.float32(rng.random()), np.float32(0))
        ours, theirs = resample(image, size, antialias), torch_resample(image, size, antialias)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape, (shape, size)
        if antialias and size[1] == 1 and size[0] != shape[0]:
            # torch's vertical antialiased pass over a one-pixel-wide image repeats its first row
            continue
        assert np.abs(ours - theirs).max() <= SAME_FILTER, (shape, size)


def test_a_one_pixel_wide_image_is_filtered_as_each_column_of_a_wider_one():
    column = np.arange(12, dtype=np.float32).reshape(12, 1)
    shrunk = resample(column, (3, 1), antialias=True)[:, 0]
    assert np.allclose(
        shrunk, resample(np.repeat(column, 4, axis=1), (3, 4), antialias=True)[:, 0], atol=1e-6
    )
    assert shrunk[1] == pytest.approx(5.5) and shrunk[0] < shrunk[1] < shrunk[2]


def test_flat_images_stay_flat_and_unchanged_sizes_are_untouched():
    rng = np.random.default_rng(3)
    for antialias in (False, True):
        flat = np.full((37, 23), 0.625, np.float32)
        assert np.allclose(resample(flat, (11, 50), antialias), 0.625, atol=1e-6)
    image = rng.random((9, 13), dtype=np.float32)
    assert np.array_equal(resample(image, (9, 13), antialias=True), image)


def test_the_same_answer_on_every_call():
    image = np.random.default_rng(5).random((120, 80), dtype=np.float32)
    first = resample(image, (20, 13), antialias=True)
    for _ in range(3):
        assert np.array_equal(resample(image.copy(), (20, 13), antialias=True), first)
