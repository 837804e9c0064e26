"""Read a whole handwritten number with a single-digit LeNet-5: the field cut into candidate digits in MNIST
form (images/field_cuts.py), all of them scored in one forward pass, and the best path through the cuts
taken by dynamic programming (number_path.py). Files and folders: number_files.py.

A path's score is the sum over its digits of the network's log-probability for the digit's best class,
less penalties for what a digit rarely is: much shorter than the field's digits, pieces with blank space
between them, or strokes that are apart on the paper. The number's confidence is the product of its
digits' probabilities.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenet_cli.core.errors import ImageError, LenetError
from lenet_cli.images.decode import Source, decode_grey, read_grey
from lenet_cli.images.field_cuts import cut_into_candidates
from lenet_cli.images.segment import Segmentation
from lenet_cli.inference.number_path import SHORT_PENALTY, best_path
from lenet_cli.inference.numpy_forward import ArrayModel, as_input

if TYPE_CHECKING:
    from torch import nn

    Model = nn.Module | ArrayModel

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


def read_source(model: Model, source: Source, invert: str, length: tuple[int, int] | None) -> Reading:
    grey = (
        decode_grey(io.BytesIO(source)) if isinstance(source, (bytes, bytearray)) else read_grey(Path(source))
    )
    return read_number(model, grey, invert, length)


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
