"""Read a whole handwritten number with a single-digit LeNet-5: cut the field into candidate pieces
(images/segment.py), put every candidate digit into MNIST form as predict does, score them all in one
forward pass, and take the best path through the cuts by dynamic programming.

A path's score is the sum over its digits of the network's log-probability for the digit's best class,
less penalties for what a digit rarely is: much shorter than the field's digits, pieces with blank space
between them, or strokes that are apart on the paper. The number's confidence is the product of its
digits' probabilities.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenet_cli.core.errors import ImageError, LenetError
from lenet_cli.images.field import clean_field
from lenet_cli.images.preprocess import Source, decode_grey, ink_to_mnist, read_grey
from lenet_cli.images.resample import resample, resample_by_matrices
from lenet_cli.images.segment import NotANumber, Segmentation, candidates, segment
from lenet_cli.inference.number_path import SHORT_PENALTY
from lenet_cli.inference.number_path import best_path as best_path  # the reader's search, public here
from lenet_cli.inference.numpy_forward import ArrayModel, as_input
from lenet_cli.inference.predict import expand_inputs, read_sources

if TYPE_CHECKING:
    from torch import nn

    Model = nn.Module | ArrayModel

WORKING_HEIGHT = 160  # taller fields are averaged down by an integer factor to about this height
MAX_WORKING_PIXELS = 1_500_000  # a field is cut at no more pixels than this (40 digits at WORKING_HEIGHT)
MIN_WORKING_HEIGHT = 12  # pixels: a field this short at its working size holds no readable digit
JOIN_PENALTY = 1.0  # for each separate stroke group joined into one candidate (a digit is rarely two)
GAP_PENALTY = 0.3  # per tenth of the digits' height of blank space between the pieces of one candidate


@dataclass
class ReadDigit:
    label: int
    confidence: float
    box: tuple[int, int, int, int]  # x, y, width, height in the image's pixels
    seen: np.ndarray  # the 28x28 uint8 input the network was given
    probabilities: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "box": list(self.box)}


@dataclass
class Reading:
    path: str
    number: str | None = None
    confidence: float | None = None
    digits: list[ReadDigit] = field(default_factory=list)
    error: str | None = None
    scale: int = 1  # the field was worked on at 1/scale of its size
    segmentation: Segmentation | None = None
    field: np.ndarray | None = None  # the cleaned ink as uint8, bright on black, at the working size

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {
            "path": self.path,
            "number": self.number,
            "confidence": self.confidence,
            "digits": [digit.to_dict() for digit in self.digits],
        }


def parse_length(text: str | None) -> tuple[int, int] | None:
    """`5` -> (5, 5), `4-6` -> (4, 6), None -> None."""
    if text is None:
        return None
    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise LenetError(f"--length takes N or N-M (digits), not {text!r}") from None
    if bounds[0] < 1 or bounds[1] < bounds[0]:
        raise LenetError(f"--length takes N or N-M with 1 <= N <= M, not {text!r}")
    return bounds


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
        height, width = grey.shape[0] // scale * scale, grey.shape[1] // scale * scale
        blocks = (
            grey[:height, :width].astype(np.float32).reshape(height // scale, scale, width // scale, scale)
        )
        grey = blocks.mean(axis=(1, 3)) / (255 if grey.dtype == np.uint8 else 1)
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


def read_number(
    model: Model, grey: np.ndarray, invert: str = "auto", length: tuple[int, int] | None = None
) -> Reading:
    """Read the number written in `grey` (H, W grey levels). Raises ImageError when nothing can be read."""
    cut = cut_into_candidates(grey, invert)
    scale, ink, segmentation, runs, inputs = cut.scale, cut.ink, cut.segmentation, cut.runs, cut.inputs
    log_probs = candidate_log_probs(model, inputs)
    class_scores = scores_of(segmentation, runs, log_probs)
    path = best_path(segmentation, runs, class_scores, length)
    field_u8 = np.round(ink / max(float(ink.max()), 1e-6) * 255).astype(np.uint8)
    reading = Reading(path="", scale=scale, segmentation=segmentation, field=field_u8)
    for run_index in path:
        start, stop = runs[run_index]
        box = segmentation.span(start, stop)
        probabilities = np.exp(log_probs[run_index])
        label = int(class_scores[run_index].argmax())
        reading.digits.append(
            ReadDigit(
                label,
                float(probabilities[label]),
                (box.left * scale, box.top * scale, box.width * scale, box.height * scale),
                inputs[run_index],
                probabilities.tolist(),
            )
        )
    reading.number = "".join(str(digit.label) for digit in reading.digits)
    reading.confidence = float(math.prod(digit.confidence for digit in reading.digits))
    return reading


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
    return ink_to_mnist(piece_ink, chosen & mask[window], resample_by_matrices)


def candidate_log_probs(model: Model, inputs_u8: np.ndarray) -> np.ndarray:
    """Log-probabilities of every candidate digit, in one forward pass: numpy or onnxruntime for a model
    read without torch, torch for a torch module (a .pt2 program, the server's model)."""
    if isinstance(model, ArrayModel):
        logits = model.forward(as_input(inputs_u8)).astype(np.float64)
    else:
        import torch

        from lenet_cli.inference.forward import predict_logits

        logits = predict_logits(model, torch.from_numpy(inputs_u8)).double().cpu().numpy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(np.float32)


def scores_of(segmentation: Segmentation, runs: list[tuple[int, int]], log_probs: np.ndarray) -> np.ndarray:
    """Each candidate's score for each class (N, 10): the network's log-probability less penalties for
    being shorter than the digits, for blank space inside and for joining separate strokes."""
    boxes = [segmentation.span(start, stop) for start, stop in runs]
    heights = np.array([box.height for box in boxes]) / segmentation.digit_height
    short = SHORT_PENALTY * 10 * np.maximum(0.0, 0.75 - heights)[:, None]
    gaps = (
        np.array(
            [
                sum(max(0.0, segmentation.gap_before(index)) for index in range(start + 1, stop))
                for start, stop in runs
            ]
        )
        / segmentation.digit_height
    )
    joins = np.array([segmentation.joins(start, stop) for start, stop in runs], np.float64)
    apart = GAP_PENALTY * 10 * gaps[:, None] + JOIN_PENALTY * joins[:, None]
    return log_probs - short - apart


OUTLINE = (
    128  # the grey level of the digit boxes drawn into an overview (seen on a black-and-white terminal too)
)


def overview(reading: Reading, rows: int = 28, max_columns: int = 160) -> np.ndarray:
    """The field at `rows` pixels tall (narrower if it would pass `max_columns`) with each digit's box
    outlined: uint8, for a terminal picture."""
    assert reading.field is not None
    height, width = reading.field.shape
    factor = min(rows / height, max_columns / width)
    size = (max(1, round(height * factor / 2)) * 2, max(1, round(width * factor)))  # even: two rows a line
    picture = resample(reading.field.astype(np.float32), size, antialias=True)
    picture = np.clip(np.round(picture), 0, 255).astype(np.uint8)
    for digit in reading.digits:
        x, y, w, h = (round(value / reading.scale * factor) for value in digit.box)
        x, y = min(x, size[1] - 1), min(y, size[0] - 1)
        right, bottom = min(x + max(w, 1), size[1]) - 1, min(y + max(h, 1), size[0]) - 1
        for rows_, cols_ in ((y, slice(x, right + 1)), (bottom, slice(x, right + 1))):
            line = picture[rows_, cols_]
            line[line < OUTLINE] = OUTLINE
        for cols_ in (x, right):
            line = picture[y : bottom + 1, cols_]
            line[line < OUTLINE] = OUTLINE
    return picture


def inputs_strip(digits: list[ReadDigit], gap: int = 2) -> np.ndarray:
    """The 28x28 inputs of these digits side by side, `gap` black columns apart."""
    strip = np.zeros((28, max(1, len(digits) * (28 + gap) - gap)), np.uint8)
    for index, digit in enumerate(digits):
        strip[:, index * (28 + gap) : index * (28 + gap) + 28] = digit.seen
    return strip


def read_source(model: Model, source: Source, invert: str, length: tuple[int, int] | None) -> Reading:
    grey = (
        decode_grey(io.BytesIO(source)) if isinstance(source, (bytes, bytearray)) else read_grey(Path(source))
    )
    return read_number(model, grey, invert, length)


def read_files(
    model: Model,
    inputs: list[str | os.PathLike],
    invert: str = "auto",
    length: tuple[int, int] | None = None,
    show_progress: bool = False,
) -> list[Reading]:
    """One Reading per image; an image that cannot be read gets `error` and the rest go on."""
    import sys

    from tqdm import tqdm

    paths = expand_inputs(inputs)
    if not paths:
        raise LenetError("no images found in the given folders")
    sources = read_sources(paths)
    bar = tqdm(
        sources,
        desc="Reading numbers",
        unit="img",
        file=sys.stderr,
        leave=False,
        disable=None if show_progress else True,
    )
    # A generator, so the bar moves as each image is read.
    named = ((str(path), source) for path, source in zip(paths, bar, strict=True))
    return read_named(model, named, invert, length)


def read_named(
    model: Model,
    named: Iterable[tuple[str, Source]],
    invert: str = "auto",
    length: tuple[int, int] | None = None,
) -> list[Reading]:
    """A Reading for each (name, path or image bytes), in order; one that cannot be read gets `error`."""
    readings = []
    for name, source in named:
        try:
            reading = read_source(model, source, invert, length)
        except ImageError as error:
            reading = Reading(path=name, error=str(error))
        reading.path = name
        readings.append(reading)
    return readings
