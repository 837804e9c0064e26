"""Opening a model for `lenet predict` and `lenet read` without torch where torch is not needed.

The file is opened once (formats/model_file.py) and handed to a reader: a checkpoint (.pt, the shipped
model included) to lenet_cli/formats/pt_weights.py, run by numpy; an ONNX file to onnxruntime. A .pt2
program, or a checkpoint only torch can read (a legacy file, unusual tensors), goes to torch's reader with
the same bytes; so does every file whose reading fails in a way torch words itself, so the error is the
one it gave before. A pickle that names code is refused here, in torch's words, before torch would be
imported.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lenet_cli.formats.model_file import ModelFile, open_model
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.formats.onnx_session import OnnxSession
from lenet_cli.formats.pt_weights import NeedsTorch, read_checkpoint
from lenet_cli.inference.numpy_forward import ArrayModel, NumpyLeNet5, OnnxArrayModel

if TYPE_CHECKING:
    from torch import nn


def load_predict_model(path: str | os.PathLike) -> tuple[ArrayModel | nn.Module, ModelInfo]:
    """The model `lenet predict` runs on the CPU: without torch where it can, else through torch."""
    model_file = open_model(path)
    loaded = load_array_model(model_file)
    if loaded is not None:
        return loaded
    from lenet_cli.formats.model_files import torch_model

    return torch_model(model_file, "cpu")


def load_array_model(model_file: ModelFile) -> tuple[ArrayModel, ModelInfo] | None:
    """The model in an opened file ready to run without torch, and what the file says of itself; None
    where only torch can read it. Errors are CheckpointError, worded as torch's path words them."""
    if model_file.kind == "pt2":
        return None
    if model_file.kind == "onnx":
        session = OnnxSession(model_file.path, model_file.data)
        return OnnxArrayModel(session), ModelInfo.of_export(model_file.given, "onnx", session.metadata())
    try:
        checkpoint = read_checkpoint(model_file)
    except NeedsTorch:
        return None
    return NumpyLeNet5(checkpoint["model"]), ModelInfo.of_checkpoint(model_file.given, checkpoint)


def read_checkpoint_record(model_file: ModelFile) -> dict[str, Any]:
    """A checked checkpoint dict (as `load_checkpoint` gives), read without torch where it can be."""
    try:
        return read_checkpoint(model_file)
    except NeedsTorch:
        from lenet_cli.formats.checkpoint import checkpoint_of

        return checkpoint_of(model_file)
