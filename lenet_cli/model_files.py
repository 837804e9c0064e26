"""Opening every model file lenet runs: checkpoints (.pt), ONNX files and torch.export programs (.pt2).

This module owns the export file formats (their suffixes, the metadata lenet writes into them), so
`export.py` writes what this module reads. An ONNX file runs through onnxruntime, a `.pt2` program
through `torch.export.load`; each is wrapped as an `nn.Module` taking the model's usual input, so
evaluate and predict use them unchanged. onnx and onnxruntime are imported only when such a file is used.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lenet_cli.checkpoint import ModelInfo, load_model
from lenet_cli.config import EXPORT_FORMATS
from lenet_cli.errors import CheckpointError

METADATA_FILE = "lenet.json"  # inside a .pt2 archive; an ONNX file keeps the same keys in metadata_props
INPUT_CONVENTION = "float32 (N, 1, 28, 28) in [0, 1], white digit on black; output logits (N, 10)"


def export_format_of(path: str | os.PathLike) -> str | None:
    """ "onnx" or "pt2" for an exported file, None for anything else (a checkpoint)."""
    suffix = Path(path).suffix.lower()
    return next((name for name, known in EXPORT_FORMATS.items() if known == suffix), None)


class OnnxModel(nn.Module):
    """An ONNX LeNet-5 run by onnxruntime on the CPU: float32 (N, 1, 28, 28) in, logits (N, 10) out."""

    def __init__(self, path: Path):
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings on stderr
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own Fail / InvalidProtobuf / ... types
            raise CheckpointError(f"{path} is not a readable ONNX model ({_first_line(error)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape_in = inputs[0].shape if len(inputs) == 1 else None
        shape_out = outputs[0].shape if outputs else None
        if shape_in is None or list(shape_in[1:]) != [1, 28, 28] or not shape_out or shape_out[-1] != 10:
            raise CheckpointError(
                f"{path} is an ONNX model but not a LeNet-5 classifier: expected one input (N, 1, 28, 28) "
                f"and logits (N, 10), found inputs {[i.shape for i in inputs]}, outputs {[o.shape for o in outputs]}"
            )
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().to("cpu", torch.float32).contiguous().numpy()
        (logits,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(logits)


class ProgramModel(nn.Module):
    """A loaded torch.export program behind the usual nn.Module face. The program's module refuses
    `.eval()`/`.train()` (an exported program has no modes), so it is held, not registered."""

    def __init__(self, program_module: nn.Module):
        super().__init__()
        object.__setattr__(self, "program", program_module)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.program(images.to("cpu", torch.float32))


def load_exported(path: str | os.PathLike, export_format: str) -> tuple[nn.Module, dict[str, Any]]:
    """The exported model, ready to call, and the metadata lenet wrote into it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    if export_format == "onnx":
        return OnnxModel(path), onnx_metadata(path)
    extra = {METADATA_FILE: ""}
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.ERROR)  # it logs a traceback as a warning before raising
    try:
        program = torch.export.load(str(path), extra_files=extra)
        module = program.module()
    except Exception as error:  # a broken or foreign archive raises many kinds of errors
        raise CheckpointError(
            f"{path} is not a readable torch.export program ({_first_line(error)})"
        ) from None
    finally:
        export_log.setLevel(level)
    try:
        metadata = json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
    except json.JSONDecodeError:
        metadata = {}
    return ProgramModel(module), metadata


def onnx_metadata(path: Path) -> dict[str, str]:
    return {key: value for key, value in describe_onnx(path)["metadata"].items()}


def describe_onnx(path: str | os.PathLike) -> dict[str, Any]:
    """Inputs, outputs, opset, producer and metadata of an ONNX file, for `lenet summary`."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable ONNX model ({_first_line(error)})") from None

    def tensors(values: Any) -> list[dict[str, Any]]:
        described = []
        for value in values:
            tensor_type = value.type.tensor_type
            shape = [dim.dim_param or dim.dim_value for dim in tensor_type.shape.dim]
            described.append({"name": value.name, "type": onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower(),
                              "shape": shape})  # fmt: skip
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


def describe_export(path: Path) -> dict[str, Any]:
    """What `lenet summary` shows of an exported file; a broken one raises CheckpointError."""
    if export_format_of(path) == "onnx":
        load_exported(path, "onnx")  # checks it is a readable LeNet-5-shaped model
        return describe_onnx(path)
    _, metadata = load_exported(path, "pt2")
    return {
        "path": str(path),
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
    export_format = export_format_of(path)
    if export_format is None:
        model, checkpoint = load_model(path, device)
        return model, ModelInfo.of_checkpoint(path, checkpoint)
    model, metadata = load_exported(path, export_format)
    accuracy = metadata.get("test_accuracy")
    info = ModelInfo(
        str(path), export_format, metadata.get("dataset") or "mnist",
        float(accuracy) if accuracy else None, metadata.get("data_dir") or None, metadata,
    )  # fmt: skip
    return model, info


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
