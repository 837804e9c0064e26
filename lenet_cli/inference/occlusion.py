"""Occlusion on the numpy model: `lenet explain`'s default attribution without torch.

Occlusion needs forward passes only, no gradients, so the numpy forward pass that `lenet predict` runs
can compute it, and `lenet explain` of an image never imports torch, whose import alone is most of the
command's time. It is Captum's `Occlusion` as inference/attribution.py calls it, step for step: each
OCCLUSION_WINDOW-square of the input (stride 1) set to black, the fall of the class's log-probability
from the image's, and each pixel given the mean fall of the squares that hold it. tests/test_explain.py
holds the two to each other on many images.
"""

from __future__ import annotations

import numpy as np

from lenet_cli.inference.attribution import OCCLUSION_WINDOW
from lenet_cli.inference.numpy_forward import NumpyLeNet5


def occlusion(model: NumpyLeNet5, inputs: np.ndarray, targets: list[int]) -> np.ndarray:
    """The occlusion map of each class in `targets` (one per row of `inputs`, float32 (N, 1, 28, 28) in
    [0, 1]), as float32 (N, 28, 28): positive where blanking a pixel lowered the class's log-probability."""
    maps = [_one_image(model, image, target) for image, target in zip(inputs, targets, strict=True)]
    return np.stack(maps) if maps else np.zeros((0, *inputs.shape[2:]), np.float32)


def _one_image(model: NumpyLeNet5, image: np.ndarray, target: int) -> np.ndarray:
    """One (1, H, W) image: all its blanked copies in one batch, the same whatever else is explained."""
    height, width = image.shape[1:]
    rows, columns = height - OCCLUSION_WINDOW + 1, width - OCCLUSION_WINDOW + 1
    blanked = np.repeat(image[None], rows * columns, axis=0)
    for top in range(rows):
        for left in range(columns):
            square = (slice(top, top + OCCLUSION_WINDOW), slice(left, left + OCCLUSION_WINDOW))
            blanked[top * columns + left, 0][square] = 0
    original = _log_probability(model.forward(image[None]), target)
    falls = (original - _log_probability(model.forward(blanked), target)).reshape(rows, columns)
    total = np.zeros((height, width), np.float64)
    covering = np.zeros((height, width), np.float64)  # how many squares hold each pixel
    for down in range(OCCLUSION_WINDOW):
        for right in range(OCCLUSION_WINDOW):
            total[down : down + rows, right : right + columns] += falls
            covering[down : down + rows, right : right + columns] += 1
    return (total / covering).astype(np.float32)


def _log_probability(logits: np.ndarray, target: int) -> np.ndarray:
    """log-softmax of each row's `target`, in float64 so that the small falls are not rounded away."""
    logits = logits.astype(np.float64)
    largest = logits.max(axis=1)
    return logits[:, target] - largest - np.log(np.exp(logits - largest[:, None]).sum(axis=1))
