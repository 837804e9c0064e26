"""The recipe: a seeded LeNet-5, its optimizer and learning-rate schedule, and restoring them.

The default is Adam on a one-cycle schedule (config.py says why its rate, batch and smoothing); the
tutorial's constant Adam 1e-3 is `schedule="constant"`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from lenet_cli.core.config import SGD_MOMENTUM, TrainConfig
from lenet_cli.core.errors import LenetError
from lenet_cli.core.model import LeNet5
from lenet_cli.formats.checkpoint import TrainingState


@dataclass
class Recipe:
    model: LeNet5
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


def build_recipe(config: TrainConfig, device: torch.device, steps_per_epoch: int) -> Recipe:
    """A fresh model (seeded by `config.seed`), optimizer and schedule for `config.epochs` epochs."""
    torch.manual_seed(config.seed)
    model = LeNet5().to(device, memory_format=torch.channels_last)  # faster convolutions on the CPU
    optimizer = make_optimizer(model, config, device)
    return Recipe(model, optimizer, make_scheduler(optimizer, config, steps_per_epoch))


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
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    steps_per_epoch: int,
    total_steps: int | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=total_steps or config.epochs * steps_per_epoch
        )
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise LenetError(f"unknown schedule {config.schedule!r}; choose onecycle or constant")


def restore_recipe(recipe: Recipe, saved: TrainingState, config: TrainConfig, steps_per_epoch: int) -> None:
    """Weights, optimizer, schedule and the RNG exactly as saved. A longer one-cycle plan (--epochs
    raised) is re-planned, then fast-forwarded to the steps already taken."""
    recipe.model.load_state_dict(saved.model)
    recipe.optimizer.load_state_dict(saved.optimizer)
    torch.set_rng_state(saved.rng_state)
    if saved.config.epochs == config.epochs or config.schedule != "onecycle":
        recipe.scheduler.load_state_dict(saved.scheduler)
        return
    _fast_forward(recipe.scheduler, saved.epoch * steps_per_epoch + saved.step)


def refit_schedule(recipe: Recipe, config: TrainConfig, total_steps: int, steps_done: int) -> None:
    """Re-plan a one-cycle schedule to end after `total_steps` (a time budget's plan), in place, at the
    rate it would have reached after `steps_done` steps of that plan. A constant rate has no end to fit."""
    if config.schedule != "onecycle":
        return
    fresh = make_scheduler(recipe.optimizer, config, 0, total_steps)
    recipe.scheduler.load_state_dict(fresh.state_dict())  # the loop keeps stepping the same object
    _fast_forward(recipe.scheduler, steps_done)


def planned_steps(recipe: Recipe, config: TrainConfig) -> int | None:
    """The total steps a one-cycle schedule is planned for (what a resumed --time run continues to)."""
    return getattr(recipe.scheduler, "total_steps", None) if config.schedule == "onecycle" else None


def _fast_forward(scheduler: torch.optim.lr_scheduler.LRScheduler, steps_done: int) -> None:
    scheduler.last_epoch = steps_done - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
        scheduler.step()
