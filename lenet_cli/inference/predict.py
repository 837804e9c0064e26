"""Prediction for image files: preprocess each, run them through the network in one batch.

The network is a torch module, or an ArrayModel (lenet_cli/inference/numpy_forward.py) that runs
without torch; torch is imported only for the first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenet_cli.core.config import DEFAULT_TOP_K
from lenet_cli.core.errors import ImageError, LenetError
from lenet_cli.core.reading import MAX_IMAGE_BYTES, NotReadable, read_stdin
from lenet_cli.core.writing import make_folder
from lenet_cli.images.decode import IMAGE_SUFFIXES, Source
from lenet_cli.images.many_files import read_digits
from lenet_cli.images.preprocess import save_png
from lenet_cli.inference import numpy_forward
from lenet_cli.inference.numpy_forward import ArrayModel

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class Prediction:
    path: str
    label: int | None = None
    confidence: float | None = None
    top_k: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    seen: np.ndarray | None = None  # the 28x28 uint8 image the network was given

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {
            "path": self.path,
            "label": self.label,
            "confidence": self.confidence,
            "top_k": [{"label": label, "probability": probability} for label, probability in self.top_k],
        }


STDIN = "-"  # `lenet predict -` reads one image from standard input


def expand_inputs(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files as given (and `-`, standard input); a folder means the image files directly inside it,
    sorted by name."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if str(item) != STDIN and item.is_dir():
            paths.extend(sorted(child for child in item.iterdir() if child.suffix.lower() in IMAGE_SUFFIXES))
        else:
            paths.append(item)
    return paths


def read_sources(paths: list[Path]) -> list[Source]:
    """What to decode for each path: the path itself, or for `-` the bytes piped into standard input."""
    if sum(str(path) == STDIN for path in paths) > 1:
        raise LenetError("`-` (standard input) can be given once")
    if not any(str(path) == STDIN for path in paths):
        return list(paths)
    try:
        piped = read_stdin(MAX_IMAGE_BYTES)
    except NotReadable as error:
        raise ImageError(str(error)) from None
    return [piped if str(path) == STDIN else path for path in paths]


def predict_files(
    model: nn.Module | ArrayModel,
    inputs: list[str | os.PathLike],
    top_k: int = DEFAULT_TOP_K,
    invert: str = "auto",
    show_progress: bool = False,
) -> list[Prediction]:
    """One Prediction per image; an unreadable or blank image gets `error` and the rest go on."""
    paths = expand_inputs(inputs)
    if not paths:
        raise LenetError("no images found in the given folders")
    predictions = [Prediction(path=str(path)) for path in paths]
    readable: list[Prediction] = []
    digits = read_digits(read_sources(paths), invert=invert, show_progress=show_progress)
    for prediction, digit in zip(predictions, digits, strict=True):
        if isinstance(digit, ImageError):
            prediction.error = str(digit)
        else:
            prediction.seen = digit
            readable.append(prediction)
    if readable:
        images_u8 = np.stack([prediction.seen for prediction in readable])
        for prediction, (labels, probs) in zip(readable, rank(model, images_u8, top_k), strict=True):
            prediction.top_k = list(zip(labels, probs, strict=True))
            prediction.label, prediction.confidence = labels[0], probs[0]
    return predictions


def rank(
    model: nn.Module | ArrayModel, images_u8: np.ndarray, top_k: int
) -> list[tuple[list[int], list[float]]]:
    """For each image: the `top_k` labels, most probable first, and their probabilities."""
    if isinstance(model, ArrayModel):
        return numpy_forward.ranked(numpy_forward.softmax(model.logits(images_u8)), top_k)
    import torch

    from lenet_cli.inference.forward import predict_logits

    probabilities = predict_logits(model, torch.from_numpy(images_u8)).softmax(dim=1).cpu()
    return ranked(probabilities, top_k)


def ranked(probabilities: torch.Tensor, top_k: int) -> list[tuple[list[int], list[float]]]:
    """For each row of class probabilities: the `top_k` labels, most probable first, and their probabilities."""
    top_probabilities, top_labels = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
    return list(zip(top_labels.tolist(), top_probabilities.tolist(), strict=True))


def save_preprocessed(predictions: list[Prediction], folder: str | os.PathLike) -> list[Path]:
    """Write each 28x28 network input as `folder/<image name>.png`, never over an existing file."""
    folder = Path(folder)
    make_folder(folder)
    written = []
    for prediction in predictions:
        if prediction.seen is None:
            continue
        stem = Path(prediction.path).stem if prediction.path != STDIN else "stdin"
        target, number = folder / f"{stem}.png", 1
        while target.exists():
            target, number = folder / f"{stem}-{number}.png", number + 1
        save_png(prediction.seen, target)
        written.append(target)
    return written
