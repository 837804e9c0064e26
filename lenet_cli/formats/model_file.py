"""One way into a model file: `open_model` opens it once (a regular file within the size limit, never
blocking), reads it whole, tells its kind once (a checkpoint, an ONNX export or a .pt2 program, by its
suffix) and hands the bytes on as a ModelFile. The readers take a ModelFile and never open the file again:
numpy's and onnxruntime's without torch (pt_weights.py, onnx_session.py, inference/fast_predict.py), torch's
for the rest (checkpoint.py, model_files.py). No torch here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lenet_cli.core.config import EXPORT_FORMATS
from lenet_cli.core.errors import CheckpointError
from lenet_cli.core.reading import MAX_MODEL_BYTES, MiB, NotReadable, open_regular


@dataclass(frozen=True)
class ModelFile:
    """A model file opened, checked and read whole: what every reader starts from."""

    given: str  # the path as it was given, as ModelInfo records it
    path: Path  # the same path, as error messages name it
    kind: str  # "checkpoint", "onnx" or "pt2"
    data: bytes  # the whole file


def open_model(path: str | os.PathLike) -> ModelFile:
    """The model file at `path`, read once; CheckpointError if it cannot be (missing, a folder, a pipe,
    empty, over the limit)."""
    return ModelFile(str(path), Path(path), export_format_of(path) or "checkpoint", _read_whole(Path(path)))


def export_format_of(path: str | os.PathLike) -> str | None:
    """ "onnx" or "pt2" for an exported file, None for anything else (a checkpoint)."""
    suffix = Path(path).suffix.lower()
    return next((name for name, known in EXPORT_FORMATS.items() if known == suffix), None)


def _open(path: Path) -> BinaryIO:
    """The regular file at `path`, at most MAX_MODEL_BYTES, opened without blocking; else one clear error."""
    try:
        handle = open_regular(path, MAX_MODEL_BYTES)
    except NotReadable as error:
        why = str(error)
        if why == "no such file":
            raise CheckpointError(f"checkpoint {path} does not exist") from None
        if why == "is a folder":
            raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
        raise CheckpointError(f"{path} {why.replace('limit', 'limit for a model file')}") from None
    if os.fstat(handle.fileno()).st_size == 0:
        handle.close()
        raise CheckpointError(f"checkpoint {path} is empty")
    return handle


def _read_whole(path: Path) -> bytes:
    """The whole model file at `path` (see _open), refused if it grew past the limit since."""
    with _open(path) as handle:
        data = handle.read(MAX_MODEL_BYTES + 1)
    if len(data) > MAX_MODEL_BYTES:
        raise CheckpointError(f"{path} is over the {MAX_MODEL_BYTES // MiB} MiB limit for a model file")
    return data
