"""A written field cut as the reader cuts it: averaged down to its working size, its ink cleaned
(field.py), cut into pieces (segment.py), and every run of pieces that could be one digit put into MNIST
form (preprocess.py), ready for the network. `lenet read` scores these candidates; `lenet train --cuts`
and `--numbers` learn from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lenet_cli.core.errors import ImageError
from lenet_cli.images.decode import block_mean
from lenet_cli.images.field import clean_field
from lenet_cli.images.preprocess import ink_to_mnist
from lenet_cli.images.segment import NotANumber, Segmentation, candidates, segment

WORKING_HEIGHT = 160  # taller fields are averaged down by an integer factor to about this height
MAX_WORKING_PIXELS = 1_500_000  # a field is cut at no more pixels than this (40 digits at WORKING_HEIGHT)
MIN_WORKING_HEIGHT = 12  # pixels: a field this short at its working size holds no readable digit


@dataclass
class Candidates:
    """A field cut as the reader cuts it: the cleaned ink at the working size, the pieces, the runs of pieces
    that could be digits and each run's 28x28 input."""

    scale: int  # the field was worked on at 1/scale of its size
    ink: np.ndarray
    mask: np.ndarray
    segmentation: Segmentation
    runs: list[tuple[int, int]]
    inputs: np.ndarray  # uint8 (len(runs), 28, 28)


def cut_into_candidates(grey: np.ndarray, invert: str = "auto") -> Candidates:
    """Clean `grey` (H, W grey levels), cut it into pieces and put every candidate digit into MNIST form: what
    the network is shown, here and when `lenet train --cuts` learns from the reader's cuts. Raises
    ImageError when nothing can be cut."""
    scale = working_scale(grey.shape)
    if scale > 1:
        grey = block_mean(grey, scale)
    ink, mask, band = clean_field(grey, invert)
    try:
        segmentation = segment(mask, ink, band)
    except NotANumber as error:
        raise ImageError(f"no number found ({error})") from None
    if segmentation.count == 0:
        raise ImageError("no digit found (only specks, dots, dashes or ruled lines)")
    runs = candidates(segmentation)
    inputs = np.stack([candidate_input(segmentation, ink, mask, start, stop) for start, stop in runs])
    return Candidates(scale, ink, mask, segmentation, runs, inputs)


def working_scale(shape: tuple[int, ...]) -> int:
    """The integer factor a field is averaged down by: to about WORKING_HEIGHT tall, and further where it
    would still hold more than MAX_WORKING_PIXELS (a field that long and thin is refused)."""
    height, width = shape[0], shape[1]
    scale = max(
        1,
        min(height // WORKING_HEIGHT, width // 8),
        math.ceil(math.sqrt(height * width / MAX_WORKING_PIXELS)),
    )
    if height // scale < MIN_WORKING_HEIGHT:
        raise ImageError(f"a {width}x{height} image is too long and thin to hold a written number")
    return scale


def candidate_input(
    segmentation: Segmentation, ink: np.ndarray, mask: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Pieces start..stop-1 alone, in MNIST form (uint8 28x28)."""
    box = segmentation.span(start, stop)
    window = (slice(box.top, box.bottom), slice(box.left, box.right))
    labels = segmentation.labels[window]
    chosen = (labels > start) & (labels <= stop)
    piece_ink = np.where(chosen, ink[window], 0)
    if float(piece_ink.max()) <= 0:  # ink that the noise floor took: the mask alone
        piece_ink = chosen.astype(np.float32)
    return ink_to_mnist(piece_ink, chosen & mask[window])
