"""Segmentations made up for tests of the reader's search: stroke groups side by side, one piece each."""

from __future__ import annotations

import numpy as np

from lenet_cli.images.segment import Box, Segmentation

DIGIT_HEIGHT = 40


def side_by_side(*widths_and_heights: tuple[int, int], gap: int) -> Segmentation:
    """Separate stroke groups `gap` pixels apart, standing on one line, digits DIGIT_HEIGHT pixels tall."""
    boxes, left = [], 0
    for width, height in widths_and_heights:
        boxes.append(Box(left, DIGIT_HEIGHT - height, left + width, DIGIT_HEIGHT))
        left += width + gap
    labels = np.zeros((DIGIT_HEIGHT, left), np.int32)
    return Segmentation(labels, boxes, float(DIGIT_HEIGHT), list(range(len(boxes))))
