"""What makes a file a lenet checkpoint, checked the same way whether torch or lenet's own reader
(lenet_cli/formats/pt_weights.py) unpickled it: the format version, a LeNet-5 state_dict with the right
keys, shapes and float values, and a record lenet can show. No torch here; the reader says what a tensor
is. (The file itself is opened and its size limited in model_file.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lenet_cli.core.errors import CheckpointError
from lenet_cli.core.version import __version__

FORMAT_VERSION = 1
# What a checkpoint's record (everything but the weights) may hold: lenet prints it whole (summary,
# --json), so a value reached twice counts twice. A pickle can share one list many times (a list of two
# references to a list of two references...): nothing to unpickle, but each level doubles what is printed.
MAX_RECORD_VALUES = 100_000
MAX_RECORD_DEPTH = 32
RECORD_KEY_TYPES = (str, int, float, bool, type(None))  # keys JSON can write (the optimizer's are ints)
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
    check_record(checkpoint, path)
    return checkpoint


def check_record(checkpoint: dict[Any, Any], path: Path) -> None:
    """Refuse a record that names its parts other than by str, is nested deeper than MAX_RECORD_DEPTH or
    holds more than MAX_RECORD_VALUES values once shared ones are counted each time they are reached."""
    if not all(isinstance(key, str) for key in checkpoint):
        raise CheckpointError(f"{path} is not a lenet checkpoint: {_not_a_name(checkpoint)} is not a name")
    pending = [(value, 1) for key, value in checkpoint.items() if key != "model"]
    reached = 0
    while pending:
        value, depth = pending.pop()
        reached += 1
        if reached + len(pending) > MAX_RECORD_VALUES or depth > MAX_RECORD_DEPTH:
            raise CheckpointError(
                f"{path} holds a training record larger than lenet reads (over {MAX_RECORD_VALUES:,} "
                f"values, shared ones counted each time, or nested over {MAX_RECORD_DEPTH} deep)"
            )
        if isinstance(value, dict):
            if not all(isinstance(key, RECORD_KEY_TYPES) for key in value):
                bad = next(key for key in value if not isinstance(key, RECORD_KEY_TYPES))
                raise CheckpointError(f"{path} holds a record with a key lenet cannot show ({_shown(bad)})")
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple | set | frozenset):  # tensors are leaves
            pending.extend((item, depth + 1) for item in value)


def checked_state_dict(
    state_dict: dict[str, Any], path: Path, is_tensor: Callable[[Any], bool]
) -> dict[str, Any]:
    """Say exactly which keys or shapes differ from LeNet-5, rather than torch's long message."""
    if not all(isinstance(key, str) for key in state_dict):
        raise CheckpointError(
            f"{path} is not a LeNet-5: its state_dict key {_not_a_name(state_dict)} is not a name"
        )
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


def _not_a_name(mapping: dict[Any, Any]) -> str:
    return _shown(next(key for key in mapping if not isinstance(key, str)))


def _shown(key: Any) -> str:
    """A key as an error message shows it: a short number's repr, else its type (it can be any size)."""
    small = isinstance(key, float | bool | type(None)) or (isinstance(key, int) and abs(key) < 10**12)
    return repr(key) if small else f"a {type(key).__name__}"


def _is_floating(tensor: Any) -> bool:
    is_floating_point = getattr(tensor, "is_floating_point", None)  # a torch tensor
    return is_floating_point() if callable(is_floating_point) else tensor.dtype.kind == "f"


def _listed(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
