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
    [0, 1]), as float32 (N, 28, 28): positive where blanking a pixel lowered the class's log-probability.
    Rows that repeat the image before them (one row per class explained) reuse its forward passes."""
    maps, falls = [], None
    for index, (image, target) in enumerate(zip(inputs, targets, strict=True)):
        if falls is None or not np.array_equal(image, inputs[index - 1]):
            falls = _falls(model, image)
        maps.append(_spread(falls[:, :, target], image.shape[1:]))
    return np.stack(maps) if maps else np.zeros((0, *inputs.shape[2:]), np.float32)


def _falls(model: NumpyLeNet5, image: np.ndarray) -> np.ndarray:
    """How far every class's log-probability falls when each square of one (1, H, W) image is blanked,
    (rows, columns, classes) by the square's corner: all blanked copies in one batch, the same whatever
    else is explained."""
    height, width = image.shape[1:]
    rows, columns = height - OCCLUSION_WINDOW + 1, width - OCCLUSION_WINDOW + 1
    blanked = np.repeat(image[None], rows * columns, axis=0)
    for top in range(rows):
        for left in range(columns):
            square = (slice(top, top + OCCLUSION_WINDOW), slice(left, left + OCCLUSION_WINDOW))
            blanked[top * columns + left, 0][square] = 0
    original = _log_probabilities(model.forward(image[None]))
    return (original - _log_probabilities(model.forward(blanked))).reshape(rows, columns, -1)


def _spread(falls: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each pixel's mean fall over the squares that hold it."""
    rows, columns = falls.shape
    total = np.zeros(shape, np.float64)
    covering = np.zeros(shape, np.float64)  # how many squares hold each pixel
    for down in range(OCCLUSION_WINDOW):
        for right in range(OCCLUSION_WINDOW):
            total[down : down + rows, right : right + columns] += falls
            covering[down : down + rows, right : right + columns] += 1
    return (total / covering).astype(np.float32)


def _log_probabilities(logits: np.ndarray) -> np.ndarray:
    """log-softmax of every row, in float64 so that the small falls are not rounded away."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
