"""What makes a file a lenet checkpoint, checked the same way whether torch or lenet's own reader
(lenet_cli/formats/pt_weights.py) unpickled it: the file limits, the format version, and a LeNet-5
state_dict with the right keys, shapes and float values. No torch here; the reader says what a tensor is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from lenet_cli import __version__
from lenet_cli.core.errors import CheckpointError
from lenet_cli.core.reading import MAX_MODEL_BYTES, NotReadable, open_regular

FORMAT_VERSION = 1
# LeNet5().state_dict()'s keys and shapes, in its order (tests/test_pt_weights.py checks they agree).
STATE_DICT_SHAPES: dict[str, tuple[int, ...]] = {
    "backbone.conv1.weight": (6, 1, 5, 5),
    "backbone.conv1.bias": (6,),
    "backbone.conv2.weight": (16, 6, 5, 5),
    "backbone.conv2.bias": (16,),
    "head.fc1.weight": (120, 400),
    "head.fc1.bias": (120,),
    "head.fc2.weight": (84, 120),
    "head.fc2.bias": (84,),
    "head.fc3.weight": (10, 84),
    "head.fc3.bias": (10,),
}


def open_model_file(path: Path) -> BinaryIO:
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


def as_checkpoint(loaded: Any, path: Path, is_tensor: Callable[[Any], bool]) -> dict[str, Any]:
    """A lenet checkpoint dict, from a checkpoint or a bare state_dict, with `model` checked."""
    if isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict):
        version = loaded.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format {version}; this lenet ({__version__}) reads up to "
                f"{FORMAT_VERSION}. Upgrade lenet to use it"
            )
        checkpoint = dict(loaded)
    elif isinstance(loaded, dict) and loaded and all(is_tensor(value) for value in loaded.values()):
        checkpoint = {"model": loaded, "format_version": None}  # a bare state_dict, e.g. the tutorial's
    else:
        raise CheckpointError(f"{path} is a PyTorch file but not a LeNet-5 checkpoint or state_dict")
    checkpoint["model"] = checked_state_dict(checkpoint["model"], path, is_tensor)
    return checkpoint


def checked_state_dict(
    state_dict: dict[str, Any], path: Path, is_tensor: Callable[[Any], bool]
) -> dict[str, Any]:
    """Say exactly which keys or shapes differ from LeNet-5, rather than torch's long message."""
    if state_dict and all(key.startswith("module.") for key in state_dict):  # saved from a DDP wrapper
        state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    missing = [key for key in STATE_DICT_SHAPES if key not in state_dict]
    unexpected = [key for key in state_dict if key not in STATE_DICT_SHAPES]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        raise CheckpointError(f"{path} is not a LeNet-5: {'; '.join(parts)}")
    for key, shape in STATE_DICT_SHAPES.items():
        value = state_dict[key]
        if not is_tensor(value) or tuple(value.shape) != shape:
            found = tuple(value.shape) if is_tensor(value) else type(value).__name__
            raise CheckpointError(f"{path} is not a LeNet-5: {key} has shape {found}, expected {shape}")
        if not _is_floating(value):
            raise CheckpointError(f"{path} is not a LeNet-5: {key} holds {value.dtype}, not floats")
    return state_dict


def _is_floating(tensor: Any) -> bool:
    is_floating_point = getattr(tensor, "is_floating_point", None)  # a torch tensor
    return is_floating_point() if callable(is_floating_point) else tensor.dtype.kind == "f"


def _listed(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
