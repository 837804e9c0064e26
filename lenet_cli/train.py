"""Training: `train_one_epoch` runs the steps, `fit` runs a whole job (data, epochs, checkpoints, test).

The data lives on the device as uint8 tensors; each epoch visits it in an order drawn from
(seed, epoch) alone, so a run is reproducible and can be resumed at any step.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lenet_cli.checkpoint import FORMAT_VERSION, create_run_dir, now_iso, save_checkpoint, versions
from lenet_cli.config import SGD_MOMENTUM, TrainConfig
from lenet_cli.data import Split, as_input, load_split, split_train_val
from lenet_cli.device import resolve_device
from lenet_cli.errors import LenetError
from lenet_cli.evaluate import Metrics, evaluate
from lenet_cli.model import LeNet5

PROGRESS_EVERY = 25  # steps between progress-bar refreshes (each one reads the loss from the device)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    lr: float  # learning rate at the end of the epoch
    seconds: float
    val_loss: float | None = None
    val_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    config: TrainConfig
    device: str
    run_dir: Path
    checkpoint: Path  # the final weights (last.pt)
    best_checkpoint: Path | None  # best validation accuracy (best.pt), when validating
    history: list[EpochRecord] = field(default_factory=list)
    test: Metrics | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "run_dir": str(self.run_dir),
            "device": self.device,
            "dataset": self.config.dataset,
            "epochs": len(self.history),
            "config": self.config.to_dict(),
            "history": [record.to_dict() for record in self.history],
            "test_accuracy": self.test.accuracy if self.test else None,
            "test_loss": self.test.loss if self.test else None,
            "seconds": round(self.seconds, 3),
        }


class NonFiniteLossError(LenetError):
    pass


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    fused = device.type in ("cpu", "cuda")  # one kernel for the whole update instead of one per tensor
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate, fused=fused)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=SGD_MOMENTUM, fused=fused
        )
    raise LenetError(f"unknown optimizer {config.optimizer!r}; choose adam or sgd")


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
        )
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise LenetError(f"unknown schedule {config.schedule!r}; choose onecycle or constant")


def epoch_order(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training images in `epoch` (0-based): depends on (seed, epoch) only."""
    generator = torch.Generator().manual_seed((seed + 1) * 1_000_003 + epoch)
    return torch.randperm(num_images, generator=generator)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train: Split,
    order: torch.Tensor,
    batch_size: int,
    progress: tqdm | None = None,
) -> float:
    """One pass over `train` in `order`; returns the mean training loss.

    Losses stay on the device; they are read back only every PROGRESS_EVERY steps, which is also
    when a non-finite loss is caught (and named by its step).
    """
    model.train()
    device = train.images.device
    batches = order.to(device).split(batch_size)
    step_losses = torch.zeros(len(batches), device=device)
    checked = 0
    for step, indices in enumerate(batches):
        logits = model(as_input(train.images[indices]))
        loss = F.cross_entropy(logits, train.labels[indices])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step_losses[step] = loss.detach()
        if (step + 1) % PROGRESS_EVERY == 0 or step + 1 == len(batches):
            _check_finite(step_losses, checked, step + 1)
            checked = step + 1
            if progress is not None:
                progress.update(step + 1 - progress.n)
                progress.set_postfix(train_loss=f"{step_losses[: step + 1].mean().item():.4g}", refresh=False)
    return step_losses.mean().item() if len(batches) else math.nan


def _check_finite(step_losses: torch.Tensor, start: int, stop: int) -> None:
    window = step_losses[start:stop]
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        step = start + int(bad[0]) + 1
        raise NonFiniteLossError(
            f"the training loss became {window[int(bad[0])].item()} at step {step} of the epoch; "
            f"stopped without saving (lower --lr?)"
        )


def fit(
    config: TrainConfig,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train LeNet-5 as `config` says, writing run-N/last.pt (and best.pt) each epoch, then test it."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    train_full = load_split(config.dataset, config.data_dir, "train")
    test = load_split(config.dataset, config.data_dir, "test")
    train, val = split_train_val(train_full, config.val_size, config.seed)
    run_dir = create_run_dir(config.checkpoint_dir)  # checked before the first step, not after an epoch

    torch.manual_seed(config.seed)
    model = LeNet5().to(device)
    optimizer = make_optimizer(model, config, device)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    train_on_device = Split(train.images.to(device), train.labels.to(device))

    result = TrainResult(config, str(device), run_dir, run_dir / "last.pt", None)
    if on_start:
        on_start(
            {
                "device": device,
                "dataset": config.dataset,
                "train_images": len(train),
                "val_images": len(val) if val else 0,
                "test_images": len(test),
                "run_dir": run_dir,
            }
        )
    best_accuracy = -1.0
    for epoch in range(config.epochs):
        epoch_started = time.perf_counter()
        with tqdm(
            total=steps_per_epoch,
            desc=f"Epoch {epoch + 1}/{config.epochs}",
            file=sys.stderr,
            disable=None if show_progress else True,
            dynamic_ncols=True,
        ) as progress:
            train_loss = train_one_epoch(
                model,
                optimizer,
                scheduler,
                train_on_device,
                epoch_order(len(train), config.seed, epoch),
                config.batch_size,
                progress,
            )
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=train_loss,
            lr=scheduler.get_last_lr()[0],
            seconds=time.perf_counter() - epoch_started,
        )
        val_metrics = evaluate(model, val) if val else None
        if val_metrics:
            record.val_loss, record.val_accuracy = val_metrics.loss, val_metrics.accuracy
        result.history.append(record)
        metrics = {"val_accuracy": record.val_accuracy, "val_loss": record.val_loss}
        payload = _checkpoint_payload(model, optimizer, scheduler, config, result.history, metrics)
        save_checkpoint(result.checkpoint, payload)
        if val_metrics and val_metrics.accuracy > best_accuracy:
            best_accuracy = val_metrics.accuracy
            result.best_checkpoint = save_checkpoint(run_dir / "best.pt", payload)
        if on_epoch_end:
            on_epoch_end(record)

    result.test = evaluate(model, test)
    final_metrics = {
        "val_accuracy": result.history[-1].val_accuracy,
        "val_loss": result.history[-1].val_loss,
        "test_accuracy": result.test.accuracy,
        "test_loss": result.test.loss,
    }
    save_checkpoint(
        result.checkpoint,
        _checkpoint_payload(model, optimizer, scheduler, config, result.history, final_metrics),
    )
    result.seconds = time.perf_counter() - started
    return result


def _checkpoint_payload(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    history: list[EpochRecord],
    metrics: dict[str, float | None],
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "model": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": _plain_scheduler_state(scheduler),
        "epoch": len(history),
        "history": [record.to_dict() for record in history],
        "config": config.to_dict(),
        "dataset": config.dataset,
        "metrics": metrics,
        "versions": versions(),
        "created": now_iso(),
    }


def _plain_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The scheduler's state without callables (LambdaLR keeps its lambda), so weights_only can read it."""
    return {key: value for key, value in scheduler.state_dict().items() if not callable(value)}
