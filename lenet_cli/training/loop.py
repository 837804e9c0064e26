"""The epoch loop: batches in a seeded order, one optimizer step each, losses checked to be finite,
and, under torchrun, every rank agreeing on when to stop.

The data lives on the device as uint8 tensors; each epoch visits it in an order drawn from
(seed, epoch) alone, so a run is reproducible and can be stopped and resumed at any step with
bit-identical results on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lenet_cli.core.distributed import Cluster
from lenet_cli.core.errors import LenetError
from lenet_cli.core.interrupts import StopRequest
from lenet_cli.data.datasets import Split, as_input
from lenet_cli.training.own_images import EpochExtras
from lenet_cli.training.stopping import TimeBudget

NUM_CLASSES = 10  # the tutorial's outputs; a label beyond them is a bad cut (--cuts)
PROGRESS_EVERY = 25  # steps between progress-bar refreshes (each one reads the loss from the device)


class NonFiniteLossError(LenetError):
    """The loss became NaN or infinite; names where, and the last good checkpoint once it is known."""

    def __init__(self, value: float, step: int, epoch: int, last_good: object = None):
        super().__init__(value, step, epoch, last_good)
        self.value, self.step, self.epoch, self.last_good = value, step, epoch, last_good

    def __str__(self) -> str:
        kept = f"; the last good checkpoint is {self.last_good}" if self.last_good else ""
        return f"the training loss became {self.value} at step {self.step} of epoch {self.epoch}{kept} (try a lower --lr)"


@dataclass
class EpochProgress:
    """Where an epoch stands: how many of its steps are done, and their losses (on the device)."""

    steps_done: int
    step_losses: torch.Tensor  # one slot per step of the epoch; the first steps_done are filled
    images_seen: int = 0  # by this process, in this epoch
    index_sum: int | torch.Tensor = 0  # of the images this process saw: a check that ranks are disjoint
    correct: int | torch.Tensor = 0  # training images this process classified right (before each step)
    trained: int = 0  # training images this process took a step on, the mixed-in ones too

    @property
    def complete(self) -> bool:
        return self.steps_done == len(self.step_losses)

    def mean_loss(self) -> float:
        return self.step_losses[: self.steps_done].mean().item() if self.steps_done else math.nan

    def accuracy(self) -> float | None:
        """Of the batches as the model saw them during the epoch (since a resume, if it resumed)."""
        return int(self.correct) / self.trained if self.trained else None


@dataclass
class EpochPlan:
    """What one epoch trains on: `batch_size` images of `train` per step in `order`, plus the extras
    (the user's own images, the style pool)."""

    epoch: int  # 0-based
    train: Split
    order: torch.Tensor
    batch_size: int  # global: under torchrun each rank takes its disjoint share of every batch
    extras: tuple[EpochExtras, ...] = ()  # augmented images from elsewhere, beyond batch_size

    def batches(self, world_size: int) -> tuple[torch.Tensor, ...]:
        return epoch_batches(self.order.to(self.train.images.device), self.batch_size, world_size)


def epoch_order(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training images in `epoch` (0-based): depends on (seed, epoch) only."""
    generator = torch.Generator().manual_seed((seed + 1) * 1_000_003 + epoch)
    return torch.randperm(num_images, generator=generator)


def epoch_batches(order: torch.Tensor, batch_size: int, world_size: int = 1) -> tuple[torch.Tensor, ...]:
    """Global batches of the epoch; a last batch too small to give every rank an image is dropped."""
    batches = order.split(batch_size)
    if world_size > 1 and len(batches[-1]) < world_size:
        batches = batches[:-1]
    return batches


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    plan: EpochPlan,
    cluster: Cluster = Cluster(),
    start: EpochProgress | None = None,
    stop: StopRequest | None = None,
    progress: tqdm | None = None,
    on_step: Callable[[int], None] | None = None,
    budget: TimeBudget | None = None,
    label_smoothing: float = 0.0,
) -> EpochProgress:
    """Run the plan's steps from `start` (default: the beginning) until it ends or `stop` is requested.

    With a time `budget`, the epoch also ends (complete, shorter) at the run's last planned step.

    Losses stay on the device; they are read back only every PROGRESS_EVERY steps, which is also
    when a non-finite loss is caught (and named by its step) and, under torchrun, when the ranks
    agree on losses and on whether to stop, so that they always stop together.
    """
    model.train()
    device = plan.train.images.device
    batches = plan.batches(cluster.world_size)
    state = start or EpochProgress(0, torch.zeros(len(batches), device=device))
    checked = state.steps_done
    bad_cuts = any(bool((extra.labels >= NUM_CLASSES).any()) for extra in plan.extras)  # one look an epoch
    for step in range(state.steps_done, len(batches)):
        indices = cluster.shard(batches[step])
        inputs, labels = _step_batch(plan, indices, step, cluster)
        logits = model(inputs)
        loss = batch_loss(logits, labels, bad_cuts, label_smoothing)
        state.correct = state.correct + (logits.detach().argmax(1) == labels).sum()
        state.trained += len(labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        state.step_losses[step] = loss.detach()
        state.steps_done = step + 1
        state.images_seen += len(indices)
        if budget is not None and budget.after_step(plan.epoch * len(batches) + step + 1):
            state.step_losses = state.step_losses[: step + 1]  # the run's last step: the epoch is complete
        at_check = step + 1 - checked >= PROGRESS_EVERY or state.complete
        if cluster.active:
            state.index_sum = state.index_sum + indices.sum()
            stopping = at_check and _all_agree_to_stop(stop, cluster, device)
        else:
            stopping = stop is not None and stop.requested
        if at_check or stopping:
            _check_window(state, checked, cluster, plan.epoch)
            checked = step + 1
            if progress is not None:
                progress.update(step + 1 - progress.n)
                progress.set_postfix(train_loss=f"{state.mean_loss():.4g}", refresh=False)
        if on_step is not None:
            on_step(step + 1)
        if stopping or state.complete:
            break
    return state


def _step_batch(
    plan: EpochPlan, indices: torch.Tensor, step: int, cluster: Cluster
) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's inputs and labels of the step: its share of the dataset batch, then the extras'."""
    inputs, labels = as_input(plan.train.images[indices]), plan.train.labels[indices]
    for extra in plan.extras:
        extra_inputs, extra_labels = extra.batch(step, cluster)
        inputs, labels = torch.cat([inputs, extra_inputs]), torch.cat([labels, extra_labels])
    return inputs, labels


def batch_loss(
    logits: torch.Tensor, labels: torch.Tensor, bad_cuts: bool = False, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy, with `label_smoothing` of the targets. With `bad_cuts`, a label beyond the classes
    (training/cut_data.py's NOT_A_DIGIT) asks for no class: its target is the uniform answer, as the 1998
    paper taught LeNet-5 the garbage its segmenter made."""
    if not bad_cuts:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    classes = logits.shape[1]
    known = labels < classes
    one_hot = F.one_hot(labels.clamp(max=classes - 1), classes).to(logits.dtype)
    targets = torch.where(known[:, None], one_hot, torch.full_like(one_hot, 1.0 / classes))
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def _all_agree_to_stop(stop: StopRequest | None, cluster: Cluster, device: torch.device) -> bool:
    """True on every rank if a signal reached any of them."""
    flag = torch.tensor([1.0 if stop is not None and stop.requested else 0.0], device=device)
    return bool(cluster.max_(flag).item())


def _check_window(state: EpochProgress, start: int, cluster: Cluster, epoch: int) -> None:
    """Make the losses of steps start..steps_done global (under torchrun) and check they are finite."""
    window = state.step_losses[start : state.steps_done]
    if cluster.active:  # every rank now holds the global mean losses
        cluster.sum_(window).div_(cluster.world_size)
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        raise NonFiniteLossError(window[int(bad[0])].item(), start + int(bad[0]) + 1, epoch + 1)
