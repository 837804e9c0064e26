"""Torch's reader of every model file lenet runs, once model_file.py has opened it: checkpoints (.pt), ONNX
files and torch.export programs (.pt2).

This module owns the metadata lenet writes into an export, so `export.py` writes what this module reads. An ONNX file runs through onnxruntime, a `.pt2` program
through `torch.export.load`; each is wrapped as an `nn.Module` taking the model's usual input, so
evaluate and predict use them unchanged. onnx and onnxruntime are imported only when such a file is used.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lenet_cli.core.errors import CheckpointError
from lenet_cli.formats.checkpoint import model_of
from lenet_cli.formats.model_file import ModelFile, open_model
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.formats.onnx_session import OnnxSession, first_line
from lenet_cli.formats.pt_archive import checked_archive, is_zip

FORCE_WEIGHTS_ONLY, FORCE_NO_WEIGHTS_ONLY = (
    "TORCH_FORCE_WEIGHTS_ONLY_LOAD",
    "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",
)
METADATA_FILE = "lenet.json"  # inside a .pt2 archive; an ONNX file keeps the same keys in metadata_props
INPUT_CONVENTION = "float32 (N, 1, 28, 28) in [0, 1], white digit on black; output logits (N, 10)"


class OnnxModel(nn.Module):
    """An ONNX LeNet-5 run by onnxruntime on the CPU: float32 (N, 1, 28, 28) in, logits (N, 10) out."""

    def __init__(self, path: Path, data: bytes):
        super().__init__()
        self.onnx = OnnxSession(path, data)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.onnx.run(array))


class ProgramModel(nn.Module):
    """A loaded torch.export program behind the usual nn.Module face. The program's module refuses
    `.eval()`/`.train()` (an exported program has no modes), so it is held, not registered."""

    def __init__(self, program_module: nn.Module):
        super().__init__()
        object.__setattr__(self, "program", program_module)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.program(images.to("cpu", torch.float32))


def load_exported(model_file: ModelFile) -> tuple[nn.Module, dict[str, Any]]:
    """The exported model in an opened file (ONNX or .pt2), ready to call, and the metadata lenet wrote
    into it; a .pt2 archive is vetted before torch reads it."""
    path, data = model_file.path, model_file.data
    if model_file.kind == "onnx":
        return OnnxModel(path, data), onnx_metadata(path, data)
    _vet_pt2_archive(path, data)
    extra = {METADATA_FILE: ""}
    try:
        with _quiet_export_log(), _weights_only_loads():
            program = torch.export.load(io.BytesIO(data), extra_files=extra)
            module = program.module()
    except Exception as error:  # a broken or foreign archive raises many kinds of errors
        if "Weights only load failed" in str(error):  # torch's word for a pickle that names code
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects that are not allowed in a safe file"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable torch.export program ({first_line(error)})"
        ) from None
    try:
        metadata = json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
    except json.JSONDecodeError:
        metadata = {}
    return ProgramModel(module), metadata


# What a .pt2 archive that holds only a graph, tensors and plain data may contain (below its top folder).
# Left out on purpose: pickled weights or constants, custom script objects and opaque objects (each
# unpickled with code-running loaders), AOTInductor and ExecuTorch payloads (compiled code), and the
# legacy single-file weights (loaded with a fallback to weights_only=False).
PT2_ENTRIES = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/\w+\.json|data/weights/\w+_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/\w+_constants_config\.json|data/constants/tensor_\d+"
    r"|data/sample_inputs/\w+\.pt|extra/[\w.-]+)"
)
PAYLOAD_FILE = re.compile(r"(weight|tensor)_\d+")  # a plain tensor's bytes, not a custom or opaque object


def _vet_pt2_archive(path: Path, data: bytes) -> None:
    """Refuse a .pt2 archive with anything torch.export.load would unpickle beyond tensors and plain data."""
    if not is_zip(data):
        raise CheckpointError(f"{path} is not a readable torch.export program (not a zip archive)")
    archive = checked_archive(data, path)  # nothing unpacked: every entry stored, within the file
    entries = archive.infolist()
    roots = {entry.filename.split("/", 1)[0] for entry in entries}
    inside = [entry.filename.split("/", 1)[-1] for entry in entries if not entry.is_dir()]
    foreign = [name for name in inside if not PT2_ENTRIES.fullmatch(name)]
    if len(roots) != 1 or foreign:
        what = f"an entry lenet does not load ({foreign[0]})" if foreign else "an unexpected layout"
        raise CheckpointError(
            f"refusing to load {path}: it holds {what}; lenet loads only graphs and tensors"
        )
    for entry in entries:
        if entry.filename.endswith(("_weights_config.json", "_constants_config.json")):
            _vet_payload_config(path, archive.read(entry))


def _vet_payload_config(path: Path, config_bytes: bytes) -> None:
    try:
        payloads = json.loads(config_bytes)["config"].values()
        pickled = [
            entry
            for entry in payloads
            if entry.get("use_pickle") is not False or not PAYLOAD_FILE.fullmatch(entry.get("path_name", ""))
        ]
    except (ValueError, KeyError, AttributeError, TypeError):
        raise CheckpointError(
            f"{path} is not a readable torch.export program (a broken payload list)"
        ) from None
    if pickled:
        raise CheckpointError(
            f"refusing to load {path}: it holds pickled weights or constants, which could run code when loaded"
        )


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Every torch.load inside: weights_only, even where torch.export asks for weights_only=False (its
    fallback for sample inputs). torch reads the variable at each call."""
    previous = {name: os.environ.pop(name, None) for name in (FORCE_WEIGHTS_ONLY, FORCE_NO_WEIGHTS_ONLY)}
    os.environ[FORCE_WEIGHTS_ONLY] = "1"
    try:
        yield
    finally:
        for name, value in previous.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


@contextlib.contextmanager
def _quiet_export_log() -> Iterator[None]:
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.ERROR)  # it logs a traceback as a warning before raising
    try:
        yield
    finally:
        export_log.setLevel(level)


def onnx_metadata(path: Path, data: bytes) -> dict[str, str]:
    return {key: value for key, value in describe_onnx(path, data)["metadata"].items()}


def describe_onnx(path: str | os.PathLike, data: bytes) -> dict[str, Any]:
    """Inputs, outputs, opset, producer and metadata of an ONNX file's bytes, for `lenet summary`."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable ONNX model ({first_line(error)})") from None

    def tensors(values: Any) -> list[dict[str, Any]]:
        described = []
        for value in values:
            tensor_type = value.type.tensor_type
            shape = [dim.dim_param or dim.dim_value for dim in tensor_type.shape.dim]
            described.append(
                {
                    "name": value.name,
                    "type": onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower(),
                    "shape": shape,
                }
            )
        return described

    return {
        "path": str(path),
        "format": "onnx",
        "inputs": tensors(model.graph.input),
        "outputs": tensors(model.graph.output),
        "opset": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "ir_version": model.ir_version,
        "metadata": {entry.key: entry.value for entry in model.metadata_props},
    }


def describe_export(model_file: ModelFile) -> dict[str, Any]:
    """What `lenet summary` shows of an exported file; a broken one raises CheckpointError."""
    if model_file.kind == "onnx":
        OnnxModel(model_file.path, model_file.data)  # checks it is a readable LeNet-5-shaped model
        return describe_onnx(model_file.path, model_file.data)
    _, metadata = load_exported(model_file)
    return {
        "path": str(model_file.path),
        "format": "pt2",
        "inputs": [{"name": "x", "type": "float", "shape": ["batch", 1, 28, 28]}],
        "outputs": [{"name": "logits", "type": "float", "shape": ["batch", 10]}],
        "metadata": metadata,
    }


def load_any_model(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[nn.Module, ModelInfo]:
    """A model to evaluate or predict with, from a checkpoint (.pt), an ONNX file or a .pt2 program,
    and what the file says of itself."""
    return torch_model(open_model(path), device)


def torch_model(model_file: ModelFile, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelInfo]:
    """`load_any_model` of an opened model file: torch's reader for every kind."""
    if model_file.kind == "checkpoint":
        model, checkpoint = model_of(model_file, device)
        return model, ModelInfo.of_checkpoint(model_file.given, checkpoint)
    model, metadata = load_exported(model_file)
    return model, ModelInfo.of_export(model_file.given, model_file.kind, metadata)
