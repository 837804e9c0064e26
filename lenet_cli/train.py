"""Training: `train_one_epoch` runs the steps, `fit` runs a whole job (data, epochs, checkpoints, test).

The data lives on the device as uint8 tensors; each epoch visits it in an order drawn from
(seed, epoch) alone, so a run is reproducible and can be stopped and resumed at any step with
bit-identical results on the CPU.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lenet_cli.checkpoint import (
    FORMAT_VERSION,
    create_run_dir,
    load_checkpoint,
    now_iso,
    save_checkpoint,
    versions,
)
from lenet_cli.config import SGD_MOMENTUM, TrainConfig
from lenet_cli.data import Split, as_input, load_split, split_train_val
from lenet_cli.device import resolve_device
from lenet_cli.errors import CheckpointError, LenetError
from lenet_cli.evaluate import Metrics, evaluate
from lenet_cli.interrupts import StopRequest, stop_on_signals
from lenet_cli.model import LeNet5

PROGRESS_EVERY = 25  # steps between progress-bar refreshes (each one reads the loss from the device)
RESUMABLE_SETTINGS = ("epochs", "device", "data_dir", "checkpoint_dir")  # may change on --resume


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


class TrainingInterrupted(LenetError):
    """Training stopped on a signal after saving a resumable checkpoint."""

    def __init__(self, checkpoint: Path, signal_number: int, epoch: int, step: int, steps_per_epoch: int):
        self.checkpoint = checkpoint
        self.exit_code = 128 + signal_number  # 130 for SIGINT, 143 for SIGTERM
        super().__init__(
            f"Interrupted in epoch {epoch} after step {step} of {steps_per_epoch}; saved {checkpoint}. "
            f"Resume with: lenet train --resume {checkpoint}"
        )


@dataclass
class EpochProgress:
    """Where an epoch stands: how many of its steps are done, and their losses (on the device)."""

    steps_done: int
    step_losses: torch.Tensor  # one slot per step of the epoch; the first steps_done are filled

    @property
    def complete(self) -> bool:
        return self.steps_done == len(self.step_losses)

    def mean_loss(self) -> float:
        return self.step_losses[: self.steps_done].mean().item() if self.steps_done else math.nan


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
    start: EpochProgress | None = None,
    stop: StopRequest | None = None,
    on_step: Callable[[int], None] | None = None,
) -> EpochProgress:
    """Run the epoch's steps from `start` (default: the beginning) until it ends or `stop` is requested.

    Losses stay on the device; they are read back only every PROGRESS_EVERY steps, which is also
    when a non-finite loss is caught (and named by its step).
    """
    model.train()
    device = train.images.device
    batches = order.to(device).split(batch_size)
    state = start or EpochProgress(0, torch.zeros(len(batches), device=device))
    checked = state.steps_done
    for step in range(state.steps_done, len(batches)):
        indices = batches[step]
        logits = model(as_input(train.images[indices]))
        loss = F.cross_entropy(logits, train.labels[indices])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        state.step_losses[step] = loss.detach()
        state.steps_done = step + 1
        stopping = stop is not None and stop.requested
        if step + 1 - checked >= PROGRESS_EVERY or state.complete or stopping:
            _check_finite(state.step_losses, checked, step + 1)
            checked = step + 1
            if progress is not None:
                progress.update(step + 1 - progress.n)
                progress.set_postfix(train_loss=f"{state.mean_loss():.4g}", refresh=False)
        if on_step is not None:
            on_step(step + 1)
        if stopping:
            break
    return state


def _check_finite(step_losses: torch.Tensor, start: int, stop: int) -> None:
    window = step_losses[start:stop]
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        raise NonFiniteLossError(
            f"the training loss became {window[int(bad[0])].item()} at step {start + int(bad[0]) + 1} "
            f"of the epoch"
        )


def resume_config(checkpoint_path: str | Path, changes: dict[str, Any]) -> TrainConfig:
    """The settings of the run saved in `checkpoint_path`, with `changes` (only RESUMABLE_SETTINGS)."""
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.get("format_version") is None or "optimizer" not in checkpoint:
        raise CheckpointError(f"{checkpoint_path} holds weights only, not a resumable training run")
    saved = TrainConfig.from_dict(checkpoint["config"])
    for name, value in changes.items():
        if name not in RESUMABLE_SETTINGS and value != getattr(saved, name):
            flag = "--" + name.replace("_", "-")
            raise LenetError(
                f"{flag} cannot change when resuming (the run used {getattr(saved, name)}); "
                f"only {', '.join('--' + s.replace('_', '-') for s in RESUMABLE_SETTINGS)} can"
            )
    config = saved.with_changes(**{k: v for k, v in changes.items() if k in RESUMABLE_SETTINGS})
    if checkpoint["epoch"] >= config.epochs:
        raise LenetError(
            f"{checkpoint_path} has finished all {checkpoint['epoch']} epochs; "
            f"pass --epochs N (more than {checkpoint['epoch']}) to train further"
        )
    return config


def fit(
    config: TrainConfig,
    resume_from: str | Path | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train LeNet-5 as `config` says, writing run-N/last.pt (and best.pt) each epoch, then test it.

    With `resume_from`, continue that checkpoint's run exactly where it stopped (use
    `resume_config` to get its settings). Ctrl-C or SIGTERM saves a resumable checkpoint and
    raises TrainingInterrupted.
    """
    started = time.perf_counter()
    device = resolve_device(config.device)
    train_full = load_split(config.dataset, config.data_dir, "train")
    test = load_split(config.dataset, config.data_dir, "test")
    train, val = split_train_val(train_full, config.val_size, config.seed)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)

    torch.manual_seed(config.seed)
    model = LeNet5().to(device, memory_format=torch.channels_last)  # ~10% faster convs on CPU
    optimizer = make_optimizer(model, config, device)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    history: list[EpochRecord] = []
    start_epoch, partial, best_accuracy = 0, None, -1.0
    if resume_from is not None:
        saved = load_checkpoint(resume_from, device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        _restore_scheduler(scheduler, saved, config, steps_per_epoch)
        torch.set_rng_state(saved["rng_state"])
        history = [EpochRecord(**record) for record in saved["history"]]
        start_epoch, best_accuracy = saved["epoch"], saved.get("best_val_accuracy", -1.0)
        if saved.get("step"):
            partial = EpochProgress(saved["step"], saved["step_losses"].to(device))
    # A resumed last.pt continues in its own folder; anything else starts a new run-N.
    if resume_from is not None and Path(resume_from).name == "last.pt":
        run_dir = Path(resume_from).parent
    else:
        run_dir = create_run_dir(config.checkpoint_dir)  # checked before the first step
    train_on_device = Split(train.images.to(device), train.labels.to(device))

    result = TrainResult(config, str(device), run_dir, run_dir / "last.pt", None, history)
    if val is not None and (run_dir / "best.pt").exists():
        result.best_checkpoint = run_dir / "best.pt"
    if on_start:
        on_start(
            {
                "device": device,
                "dataset": config.dataset,
                "train_images": len(train),
                "val_images": len(val) if val else 0,
                "test_images": len(test),
                "run_dir": run_dir,
                "resumed_at": (start_epoch, partial.steps_done if partial else 0) if resume_from else None,
            }
        )

    def payload(epoch_progress: EpochProgress | None, metrics: dict[str, float | None]) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model": {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": _plain_scheduler_state(scheduler),
            "epoch": len(history),
            "step": epoch_progress.steps_done if epoch_progress else 0,
            "step_losses": epoch_progress.step_losses.cpu() if epoch_progress else torch.zeros(0),
            "rng_state": torch.get_rng_state(),
            "history": [record.to_dict() for record in history],
            "best_val_accuracy": best_accuracy,
            "config": config.to_dict(),
            "dataset": config.dataset,
            "metrics": metrics,
            "versions": versions(),
            "created": now_iso(),
        }

    stop = StopRequest()
    with stop_on_signals(stop):
        for epoch in range(start_epoch, config.epochs):
            epoch_started = time.perf_counter()
            with tqdm(
                total=steps_per_epoch,
                initial=partial.steps_done if partial else 0,
                desc=f"Epoch {epoch + 1}/{config.epochs}",
                file=sys.stderr,
                disable=None if show_progress else True,
                dynamic_ncols=True,
            ) as progress:
                try:
                    state = train_one_epoch(
                        model,
                        optimizer,
                        scheduler,
                        train_on_device,
                        epoch_order(len(train), config.seed, epoch),
                        config.batch_size,
                        progress,
                        start=partial,
                        stop=stop,
                        on_step=on_step,
                    )
                except NonFiniteLossError as error:
                    kept = f"; the last good checkpoint is {result.checkpoint}" if history else ""
                    raise NonFiniteLossError(f"{error} {epoch + 1}{kept} (try a lower --lr)") from None
            partial = None
            if not state.complete:
                save_checkpoint(result.checkpoint, payload(state, {}))
                assert stop.signal_number is not None
                raise TrainingInterrupted(
                    result.checkpoint, stop.signal_number, epoch + 1, state.steps_done, steps_per_epoch
                )
            record = EpochRecord(
                epoch=epoch + 1,
                train_loss=state.mean_loss(),
                lr=scheduler.get_last_lr()[0],
                seconds=time.perf_counter() - epoch_started,
            )
            val_metrics = evaluate(model, val) if val else None
            if val_metrics:
                record.val_loss, record.val_accuracy = val_metrics.loss, val_metrics.accuracy
            history.append(record)
            is_best = val_metrics is not None and val_metrics.accuracy > best_accuracy
            if is_best:
                best_accuracy = val_metrics.accuracy
            epoch_payload = payload(None, {"val_accuracy": record.val_accuracy, "val_loss": record.val_loss})
            save_checkpoint(result.checkpoint, epoch_payload)
            if is_best:
                result.best_checkpoint = save_checkpoint(run_dir / "best.pt", epoch_payload)
            if on_epoch_end:
                on_epoch_end(record)
            if stop.requested:
                raise TrainingInterrupted(
                    result.checkpoint, stop.signal_number, epoch + 1, steps_per_epoch, steps_per_epoch
                )

    result.test = evaluate(model, test)
    final_metrics = {
        "val_accuracy": history[-1].val_accuracy,
        "val_loss": history[-1].val_loss,
        "test_accuracy": result.test.accuracy,
        "test_loss": result.test.loss,
    }
    save_checkpoint(result.checkpoint, payload(None, final_metrics))
    result.seconds = time.perf_counter() - started
    return result


def _restore_scheduler(
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    saved: dict[str, Any],
    config: TrainConfig,
    steps_per_epoch: int,
) -> None:
    """Same plan: restore it exactly. A longer one-cycle plan (--epochs raised): re-plan, then
    fast-forward to the steps already taken."""
    if saved["config"]["epochs"] == config.epochs or config.schedule != "onecycle":
        scheduler.load_state_dict(saved["scheduler"])
        return
    steps_taken = saved["epoch"] * steps_per_epoch + saved.get("step", 0)
    scheduler.last_epoch = steps_taken - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
        scheduler.step()


def _plain_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The scheduler's state without callables (LambdaLR keeps its lambda), so weights_only can read it."""
    return {key: value for key, value in scheduler.state_dict().items() if not callable(value)}
