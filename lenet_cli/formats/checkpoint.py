"""The checkpoint file format: the one place that writes it and reads it back.

A lenet checkpoint is a plain dict, written atomically and read with `weights_only=True`. Its keys:

- `format_version`: FORMAT_VERSION, so a newer file is refused by name
- `model`: the LeNet-5 state_dict (tensors on the CPU)
- `optimizer`, `scheduler`: their state_dicts (the scheduler's without callables)
- `epoch`: finished epochs
- `step`, `step_losses`: steps done in an unfinished epoch and their losses (0 and empty at a boundary)
- `rng_state`: torch's CPU generator, so a resumed run draws what the uninterrupted one would have
- `history`: one EpochRecord dict per finished epoch
- `best_val_accuracy`: the best validation accuracy so far (-1 without validation)
- `config`: the TrainConfig as a dict
- `dataset`: the dataset's name
- `world_size`: how many processes trained it
- `images`: the user's image folders it learned from (folders, count, sha256), or None
- `init`: the checkpoint it started from (path, dataset, test_accuracy, created), or None
- `styles`: with --styles, the style pool it learned from (fonts, count, sources, sha256), or None
- `cuts`: with --cuts, the reader's cuts it learned from (count, bad_cuts, sha256), or None
- `numbers`: with --numbers, the number folders it learned from (folders, count, unspellable, pieces,
  sha256) and the alignment of the epoch under way (aligned_epoch, targets), or None
- `metrics`: val/test accuracy and loss when it was saved
- `versions`: lenet, torch, torchvision and Python versions
- `created`: when it was written (ISO 8601, UTC)

A bare state_dict saved by the tutorial's own code (`torch.save(model.state_dict(), path)`) is read too.
Everyone else asks this module: `save_training`/`read_training` for runs, `resume_config` for what a
resume may change, `read_init` for `--init`, `load_model` for evaluate, predict, export
and summary (what a file says of itself is `model_info.ModelInfo`).
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import pickle
import platform
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.errors import CheckpointError, LenetError
from lenet_cli.core.model import LeNet5
from lenet_cli.core.records import EpochRecord
from lenet_cli.core.version import __version__
from lenet_cli.core.writing import atomic_write
from lenet_cli.formats.checkpoint_rules import FORMAT_VERSION as FORMAT_VERSION  # defined without torch
from lenet_cli.formats.checkpoint_rules import as_checkpoint
from lenet_cli.formats.model_file import ModelFile, open_model
from lenet_cli.formats.pt_archive import checked_archive, is_zip
from lenet_cli.formats.shipped import init_source

RESUMABLE_SETTINGS = ("epochs", "device", "data_dir", "checkpoint_dir")  # may change on --resume


@dataclass
class TrainingState:
    """What a resumable checkpoint restores: the recipe's state, where the run stands, its history."""

    config: TrainConfig
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    epoch: int  # finished epochs
    rng_state: torch.Tensor
    step: int = 0  # steps done in the unfinished epoch
    step_losses: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    history: list[EpochRecord] = field(default_factory=list)
    best_val_accuracy: float = -1.0
    world_size: int = 1
    images: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    styles: dict[str, Any] | None = None
    cuts: dict[str, Any] | None = None
    numbers: dict[str, Any] | None = None


def versions() -> dict[str, str]:
    return {
        "lenet": __version__,
        "torch": str(torch.__version__),
        "torchvision": importlib.metadata.version("torchvision"),  # without importing it (slow)
        "python": platform.python_version(),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_training(path: str | os.PathLike, state: TrainingState, metrics: dict[str, float | None]) -> Path:
    """Write a resumable checkpoint so that a crash at any instant leaves the old file or the new one."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model": {key: value.detach().cpu().contiguous() for key, value in state.model.items()},
        "optimizer": state.optimizer,
        "scheduler": {key: value for key, value in state.scheduler.items() if not callable(value)},
        "epoch": state.epoch,
        "step": state.step,
        "step_losses": state.step_losses.cpu(),
        "rng_state": state.rng_state,
        "history": [record.to_dict() for record in state.history],
        "best_val_accuracy": state.best_val_accuracy,
        "config": state.config.to_dict(),
        "dataset": state.config.dataset,
        "world_size": state.world_size,
        "images": state.images,
        "init": state.init,
        "styles": state.styles,
        "cuts": state.cuts,
        "numbers": state.numbers,
        "metrics": metrics,
        "versions": versions(),
        "created": now_iso(),
    }
    return save_checkpoint(path, payload)


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write any checkpoint dict atomically."""
    return atomic_write(path, lambda handle: torch.save(payload, handle), "checkpoint", CheckpointError)


def read_training(path: str | os.PathLike, device: torch.device | str = "cpu") -> TrainingState:
    """The run saved in `path`, to continue it; weights alone are refused."""
    saved = _resumable(path, device)
    return TrainingState(
        config=TrainConfig.from_dict(saved["config"]),
        model=saved["model"],
        optimizer=saved["optimizer"],
        scheduler=saved["scheduler"],
        epoch=saved["epoch"],
        rng_state=saved.get("rng_state", torch.get_rng_state()),
        step=saved.get("step", 0),
        step_losses=saved.get("step_losses", torch.zeros(0)),
        history=[EpochRecord(**record) for record in saved["history"]],
        best_val_accuracy=saved.get("best_val_accuracy", -1.0),
        world_size=saved.get("world_size", 1),
        images=saved.get("images"),
        init=saved.get("init"),
        styles=saved.get("styles"),
        cuts=saved.get("cuts"),
        numbers=saved.get("numbers"),
    )


def resume_config(path: str | os.PathLike, changes: dict[str, Any]) -> TrainConfig:
    """The settings of the run saved in `path`, with `changes` (only RESUMABLE_SETTINGS may differ)."""
    saved = _resumable(path, "cpu")
    config = TrainConfig.from_dict(saved["config"])
    for name, value in changes.items():
        if name not in RESUMABLE_SETTINGS and value != getattr(config, name):
            used = getattr(config, name)
            if isinstance(used, tuple):  # --images, --numbers
                used = ", ".join(used) or "none"
            raise LenetError(
                f"{_flag(name)} cannot change when resuming (the run used {used}); "
                f"only {', '.join(map(_flag, RESUMABLE_SETTINGS))} can"
            )
    config = config.with_changes(**{k: v for k, v in changes.items() if k in RESUMABLE_SETTINGS})
    if saved["epoch"] >= config.epochs:
        raise LenetError(
            f"{path} has finished all {saved['epoch']} epochs; "
            f"pass --epochs N (more than {saved['epoch']}) to train further"
        )
    return config


def read_init(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state_dict, where it came from) for `--init`: another checkpoint's weights to start from, or a
    shipped model's by name (`reader`, `digits`)."""
    path = init_source(path)
    initial = load_checkpoint(path, device)
    return initial["model"], {
        "path": str(path),
        "dataset": initial.get("dataset"),
        "test_accuracy": (initial.get("metrics") or {}).get("test_accuracy"),
        "created": initial.get("created"),
    }


def _resumable(path: str | os.PathLike, device: torch.device | str) -> dict[str, Any]:
    saved = load_checkpoint(path, device)
    if saved.get("format_version") is None or "optimizer" not in saved:
        raise CheckpointError(f"{path} holds weights only, not a resumable training run")
    return saved


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a lenet checkpoint or a bare LeNet-5 state_dict; always a dict with `model` checked."""
    return checkpoint_of(open_model(path), device)


def checkpoint_of(model_file: ModelFile, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint in an opened model file, read by torch; always a dict with `model` checked.

    Only tensors and plain containers are unpickled (`weights_only=True`), so a file that would run
    code when loaded is refused instead.
    """
    path, data = model_file.path, model_file.data
    if is_zip(data):  # else a legacy file, a pickle alone: torch reads it or says why not
        checked_archive(data, path)
    return _as_checkpoint(_unpickle_weights(data, path, device), path)


def _unpickle_weights(data: bytes, path: Path, device: torch.device | str) -> Any:
    """torch.load with weights_only: tensors and plain containers, nothing that could run code. Storage
    sizes are checked against the file's records by torch, so no declared size is allocated blindly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # garbage can make the unpickler warn before it fails
            return torch.load(io.BytesIO(data), map_location=device, weights_only=True)
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


def _as_checkpoint(loaded: Any, path: Path) -> dict[str, Any]:
    return as_checkpoint(loaded, path, lambda value: isinstance(value, torch.Tensor))


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[LeNet5, dict[str, Any]]:
    """A ready-to-run LeNet5 (eval mode, on `device`) and the checkpoint it came from."""
    return model_of(open_model(path), device)


def model_of(model_file: ModelFile, device: torch.device | str = "cpu") -> tuple[LeNet5, dict[str, Any]]:
    """`load_model` of an opened model file."""
    checkpoint = checkpoint_of(model_file, device)
    model = LeNet5().to(device, memory_format=torch.channels_last)
    model.load_state_dict(checkpoint["model"], strict=True)
    model.eval()
    return model, checkpoint
