"""Checkpoints: plain dicts written atomically and read back with `weights_only=True`.

A lenet checkpoint holds `format_version`, `model` (the state_dict), `optimizer`, `scheduler`,
`epoch`, `history`, `config`, `dataset`, `metrics`, `versions` and `created`. A bare state_dict saved
by the tutorial's own code (`torch.save(model.state_dict(), path)`) is read too.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import platform
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lenet_cli import __version__
from lenet_cli.errors import CheckpointError
from lenet_cli.files import atomic_write
from lenet_cli.model import LeNet5

FORMAT_VERSION = 1
RUN_DIR_PATTERN = re.compile(r"run-(\d+)$")


def versions() -> dict[str, str]:
    return {
        "lenet": __version__,
        "torch": str(torch.__version__),
        "torchvision": importlib.metadata.version("torchvision"),  # without importing it (slow)
        "python": platform.python_version(),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` so that a crash at any instant leaves the old file or the new one."""
    return atomic_write(path, lambda handle: torch.save(payload, handle), "checkpoint", CheckpointError)


def create_run_dir(checkpoint_dir: str | os.PathLike) -> Path:
    """Make a fresh `checkpoint_dir/run-N` (N one past the highest), so no earlier run is overwritten."""
    root = Path(checkpoint_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"cannot create checkpoint folder {root}: {error.strerror or error}") from None
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} is not a folder")
    if not os.access(root, os.W_OK | os.X_OK):
        raise CheckpointError(f"checkpoint folder {root} is not writable")
    taken = [int(m.group(1)) for child in root.iterdir() if (m := RUN_DIR_PATTERN.match(child.name))]
    number = max(taken, default=0) + 1
    while True:
        run_dir = root / f"run-{number}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:  # another run took it first
            number += 1
        except OSError as error:
            raise CheckpointError(f"cannot create {run_dir}: {error.strerror or error}") from None


def find_latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path:
    """The most recently written `*.pt` anywhere under `checkpoint_dir`."""
    root = Path(checkpoint_dir)
    candidates = [path for path in root.rglob("*.pt") if path.is_file()] if root.is_dir() else []
    if not candidates:
        raise CheckpointError(
            f"no checkpoint found in {root}/; train one with `lenet train` or pass --checkpoint PATH"
        )
    return max(candidates, key=lambda path: path.stat().st_mtime)


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a lenet checkpoint or a bare LeNet-5 state_dict; always a dict with `model` checked.

    Only tensors and plain containers are unpickled (`weights_only=True`), so a file that would run
    code when loaded is refused instead.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # garbage can make the unpickler warn before it fails
            loaded = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():  # a class or function reference: what code-running pickles need
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects that are not allowed in a safe checkpoint"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)"
        ) from None
    except Exception:  # random bytes reach torch's legacy reader, which fails in many ways (IndexError...)
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?)"
        ) from None

    if isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict):
        version = loaded.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format {version}; this lenet ({__version__}) reads up to "
                f"{FORMAT_VERSION}. Upgrade lenet to use it"
            )
        checkpoint = dict(loaded)
    elif isinstance(loaded, dict) and loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        checkpoint = {"model": loaded, "format_version": None}  # a bare state_dict, e.g. the tutorial's
    else:
        raise CheckpointError(f"{path} is a PyTorch file but not a LeNet-5 checkpoint or state_dict")
    checkpoint["model"] = _checked_state_dict(checkpoint["model"], path)
    return checkpoint


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[LeNet5, dict[str, Any]]:
    """A ready-to-run LeNet5 (eval mode, on `device`) and the checkpoint it came from."""
    checkpoint = load_checkpoint(path, device)
    model = LeNet5().to(device, memory_format=torch.channels_last)
    model.load_state_dict(checkpoint["model"], strict=True)
    model.eval()
    return model, checkpoint


def _checked_state_dict(state_dict: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """Say exactly which keys or shapes differ from LeNet-5, rather than torch's long message."""
    if state_dict and all(key.startswith("module.") for key in state_dict):  # saved from a DDP wrapper
        state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    expected = LeNet5().state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        raise CheckpointError(f"{path} is not a LeNet-5: {'; '.join(parts)}")
    for key, reference in expected.items():
        value = state_dict[key]
        if not isinstance(value, torch.Tensor) or value.shape != reference.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointError(
                f"{path} is not a LeNet-5: {key} has shape {shape}, expected {tuple(reference.shape)}"
            )
        if not value.is_floating_point():
            raise CheckpointError(f"{path} is not a LeNet-5: {key} holds {value.dtype}, not floats")
    return state_dict


def _listed(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
