"""numpy's bilinear resampling against torch's, bit for bit, on the sizes preprocessing meets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenet_cli.images.resample import SMALL_OUTPUT, fused
from lenet_cli.images.resample import resample_in_numpy as resample

# The emulation follows torch's vectorised CPU kernels (AVX2 and AVX-512 round alike, both checked);
# torch's scalar fallback, on a CPU with neither, rounds some sums otherwise.
pytestmark = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="torch runs its scalar resampling kernel on this CPU (no AVX2)",
)


def torch_resample(image, size, antialias):
    tensor = torch.from_numpy(image)[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=antialias)[
        0, 0
    ].numpy()


def sizes(rng, antialias, count):
    """(input, output) sizes: shrinking to digit size with antialias, else growing a background grid,
    small and large outputs (the two kernels), one-pixel sides and unchanged sides."""
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


@pytest.fixture
def one_thread():
    """torch on one thread, as the predict path runs it; restored after, so other tests keep theirs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("antialias", [False, True])
def test_numpy_resampling_is_torch_bit_for_bit(antialias, one_thread):
    rng = np.random.default_rng(24)
    for shape, size in sizes(rng, antialias, 300):
        image = rng.random(shape, dtype=np.float32)
        if rng.random() < 0.3:  # flat ink on black, as a cropped digit
            image = np.where(image > 0.5, np.float32(rng.random()), np.float32(0))
        ours, theirs = resample(image, size, antialias), torch_resample(image, size, antialias)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape, (shape, size)
        assert np.array_equal(ours, theirs), (shape, size, float(np.abs(ours - theirs).max()))


def test_both_kernels_around_the_switch():
    image = np.random.default_rng(1).random((9, 13), dtype=np.float32)
    for size in [(SMALL_OUTPUT // 2, SMALL_OUTPUT // 2), (SMALL_OUTPUT // 2, SMALL_OUTPUT // 2 + 1)]:
        assert np.array_equal(resample(image, size), torch_resample(image, size, False))


def test_fused_rounds_once():
    a = b = np.float32(1 + 2**-12)  # a * b = 1 + 2**-11 + 2**-24 exactly
    c = np.float32(-(1 + 2**-11))
    assert fused(np.array([a]), np.array([b]), np.array([c]))[0] == np.float32(2**-24)
    assert (a * b + c) == 0  # rounded twice, the product's last bit is lost
    rng = np.random.default_rng(5)  # against float64 where that is exact enough: many random triples
    x, y, z = (rng.random(10_000, dtype=np.float32) for _ in range(3))
    exact = x.astype(np.float64) * y + z
    assert np.abs(fused(x, y, z).astype(np.float64) - exact).max() <= np.spacing(np.float32(2)) / 2


def test_fused_where_float64_lands_halfway():
    a = np.float32(2**-12 * (1 + 2**-23))
    b = np.float32(2**-12 * (1 - 2**-23))
    c = np.float32(1 + 2**-23)  # a * b + c = 1 + 2**-23 + 2**-24 - 2**-70: just below halfway
    naive = np.float32(np.float64(a) * np.float64(b) + np.float64(c))  # float64 rounds it to halfway
    assert naive == np.float32(1 + 2**-22)
    assert fused(np.array([a]), np.array([b]), np.array([c]))[0] == c
