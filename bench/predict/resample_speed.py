"""The one resampler (lenet_cli/images/resample.py, numpy) against torch's F.interpolate on the sizes
preprocessing and the number reader meet, as a ratio in one process, and how far apart their values are.

    OMP_NUM_THREADS=1 python bench/predict/resample_speed.py [--repeats 200]

Cases: a candidate digit shrunk to the 20-pixel box (small and large crops, antialiased) and a
background grid grown to a whole image (bilinear). Prints one line per case: microseconds per call for
each, numpy / torch, and the largest difference of their values (images in [0, 1]).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from lenet_cli.images.resample import resample

CASES = [  # (input shape, output size, antialias)
    ((40, 25), (20, 13), True),
    ((90, 60), (20, 13), True),
    ((300, 200), (20, 13), True),
    ((1000, 900), (20, 18), True),
    ((16, 12), (1000, 750), False),
    ((500, 500), (1000, 1000), False),
]


def torch_resample(image: np.ndarray, size: tuple[int, int], antialias: bool) -> np.ndarray:
    tensor = torch.from_numpy(image)[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=antialias)[
        0, 0
    ].numpy()


def per_call(function, *args, repeats: int) -> float:
    """Median microseconds per call over `repeats` calls, in 5 rounds."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            function(*args)
        rounds.append((time.perf_counter() - start) / repeats * 1e6)
    return float(np.median(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for shape, size, antialias in CASES:
        image = rng.random(shape, dtype=np.float32)
        repeats = max(2, args.repeats * 2_000 // (shape[0] * shape[1] + size[0] * size[1]))
        ours = per_call(resample, image, size, antialias, repeats=repeats)
        theirs = per_call(torch_resample, image, size, antialias, repeats=repeats)
        apart = float(np.abs(resample(image, size, antialias) - torch_resample(image, size, antialias)).max())
        print(
            f"{shape[0]}x{shape[1]} -> {size[0]}x{size[1]}{' antialias' if antialias else ''}: "
            f"numpy {ours:.0f} us, torch {theirs:.0f} us, ratio {ours / theirs:.2f}, values within {apart:.1e}"
        )


if __name__ == "__main__":
    main()
