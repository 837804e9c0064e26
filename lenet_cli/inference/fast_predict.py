"""Opening a model for `lenet predict` without torch where torch is not needed.

A checkpoint (.pt, the shipped model included) is read by lenet_cli/formats/pt_weights.py and run by
numpy; an ONNX file by onnxruntime. A .pt2 program, or a checkpoint only torch can read (a legacy
file, unusual tensors), goes through torch as before; so does every file whose reading fails in a
way torch words itself, so the error is the one it gave before. A pickle that names code is refused
here, in torch's words, before torch would be imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lenet_cli.core.config import EXPORT_FORMATS
from lenet_cli.formats.checkpoint_rules import read_model_bytes
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.formats.onnx_session import OnnxSession
from lenet_cli.formats.pt_weights import NeedsTorch, read_checkpoint
from lenet_cli.inference.numpy_forward import ArrayModel, NumpyLeNet5, OnnxArrayModel

if TYPE_CHECKING:
    from torch import nn


def load_predict_model(path: str | os.PathLike) -> tuple[ArrayModel | nn.Module, ModelInfo]:
    """The model `lenet predict` runs on the CPU: without torch where it can, else through torch."""
    loaded = load_array_model(path)
    if loaded is not None:
        return loaded
    from lenet_cli.formats.model_files import load_any_model

    return load_any_model(path, "cpu")


def load_array_model(path: str | os.PathLike) -> tuple[ArrayModel, ModelInfo] | None:
    """The model in `path` ready to run without torch, and what the file says of itself; None where
    only torch can open it. Errors are CheckpointError, worded as torch's path words them."""
    suffix = Path(path).suffix.lower()
    if suffix == EXPORT_FORMATS["pt2"]:
        return None
    if suffix == EXPORT_FORMATS["onnx"]:
        data = read_model_bytes(Path(path))
        session = OnnxSession(Path(path), data)
        metadata = session.metadata()
        accuracy = metadata.get("test_accuracy")
        info = ModelInfo(
            str(path),
            "onnx",
            metadata.get("dataset") or "mnist",
            float(accuracy) if accuracy else None,
            metadata.get("data_dir") or None,
            metadata,
        )
        return OnnxArrayModel(session), info
    try:
        checkpoint = read_checkpoint(path)
    except NeedsTorch:
        return None
    return NumpyLeNet5(checkpoint["model"]), ModelInfo.of_checkpoint(path, checkpoint)


def read_checkpoint_record(path: str | os.PathLike) -> dict[str, Any]:
    """A checked checkpoint dict (as `load_checkpoint` gives), read without torch where it can be."""
    try:
        return read_checkpoint(path)
    except NeedsTorch:
        from lenet_cli.formats.checkpoint import load_checkpoint

        return load_checkpoint(path)
