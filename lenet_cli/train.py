"""Training: `train_one_epoch` runs the steps; `fit` runs a whole job through a `TrainingRun`
(data, epochs, checkpoints, test), telling its reporters as it goes.

The data lives on the device as uint8 tensors; each epoch visits it in an order drawn from
(seed, epoch) alone, so a run is reproducible and can be stopped and resumed at any step with
bit-identical results on the CPU.
"""

from __future__ import annotations

import gc
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
from lenet_cli.distributed import Cluster, finish, start
from lenet_cli.errors import CheckpointError, LenetError, StoppedBySignal
from lenet_cli.evaluate import Metrics, evaluate
from lenet_cli.files import remove_stale_temporaries
from lenet_cli.interrupts import StopRequest, stop_on_signals
from lenet_cli.model import LeNet5
from lenet_cli.own_images import EpochExtras, load_own_images
from lenet_cli.reporters import MetricsCsv, Reporter, Reporters, RunPictures

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
    data_per_rank: list[dict[str, int]] | None = None  # under torchrun: images and index sum per rank

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
    rank: int = 0  # under torchrun, only rank 0 reports
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "run_dir": str(self.run_dir),
            "device": self.device,
            "world_size": self.world_size,
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


class TrainingInterrupted(StoppedBySignal):
    """Training stopped on a signal after saving a resumable checkpoint."""

    def __init__(
        self, checkpoint: Path, signal_number: int, epoch: int, step: int, steps_per_epoch: int, rank: int = 0
    ):
        self.checkpoint = checkpoint
        super().__init__(
            f"Interrupted in epoch {epoch} after step {step} of {steps_per_epoch}; saved {checkpoint}. "
            f"Resume with: lenet train --resume {checkpoint}",
            signal_number,
            announce=rank == 0,  # under torchrun, one line from rank 0, not one per process
        )


@dataclass
class EpochProgress:
    """Where an epoch stands: how many of its steps are done, and their losses (on the device)."""

    steps_done: int
    step_losses: torch.Tensor  # one slot per step of the epoch; the first steps_done are filled
    images_seen: int = 0  # by this process, in this epoch
    index_sum: int | torch.Tensor = 0  # of the images this process saw: a check that ranks are disjoint

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
    cluster: Cluster = Cluster(),
    extra: EpochExtras | None = None,
) -> EpochProgress:
    """Run the epoch's steps from `start` (default: the beginning) until it ends or `stop` is requested.

    `batch_size` is global: under torchrun each rank takes its disjoint share of every batch.
    `extra` adds the user's own (augmented) images to every batch, beyond `batch_size`.
    Losses stay on the device; they are read back only every PROGRESS_EVERY steps, which is also
    when a non-finite loss is caught (and named by its step) and, under torchrun, when the ranks
    agree on losses and on whether to stop, so that they always stop together.
    """
    model.train()
    device = train.images.device
    batches = epoch_batches(order.to(device), batch_size, cluster.world_size)
    state = start or EpochProgress(0, torch.zeros(len(batches), device=device))
    checked = state.steps_done
    for step in range(state.steps_done, len(batches)):
        indices = cluster.shard(batches[step])
        inputs, labels = as_input(train.images[indices]), train.labels[indices]
        if extra is not None:
            extra_inputs, extra_labels = extra.batch(step, cluster)
            inputs, labels = torch.cat([inputs, extra_inputs]), torch.cat([labels, extra_labels])
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        state.step_losses[step] = loss.detach()
        state.steps_done = step + 1
        state.images_seen += len(indices)
        at_check = step + 1 - checked >= PROGRESS_EVERY or state.complete
        if cluster.active:
            state.index_sum = state.index_sum + indices.sum()
            stopping = at_check and _all_agree_to_stop(stop, cluster, device)
        else:
            stopping = stop is not None and stop.requested
        if at_check or stopping:
            if cluster.active:  # every rank now holds the global mean losses
                cluster.sum_(state.step_losses[checked : step + 1]).div_(cluster.world_size)
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


def epoch_batches(order: torch.Tensor, batch_size: int, world_size: int = 1) -> tuple[torch.Tensor, ...]:
    """Global batches of the epoch; a last batch too small to give every rank an image is dropped."""
    batches = order.split(batch_size)
    if world_size > 1 and len(batches[-1]) < world_size:
        batches = batches[:-1]
    return batches


def _all_agree_to_stop(stop: StopRequest | None, cluster: Cluster, device: torch.device) -> bool:
    """True on every rank if a signal reached any of them."""
    flag = torch.tensor([1.0 if stop is not None and stop.requested else 0.0], device=device)
    return bool(cluster.max_(flag).item())


def _check_finite(step_losses: torch.Tensor, start: int, stop: int) -> None:
    window = step_losses[start:stop]
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        raise NonFiniteLossError(
            f"the training loss became {window[int(bad[0])].item()} at step {start + int(bad[0]) + 1} of epoch"
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
            used = getattr(saved, name)
            if isinstance(used, tuple):  # --images
                used = ", ".join(used) or "none"
            raise LenetError(
                f"{flag} cannot change when resuming (the run used {used}); "
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
    reporters: Sequence[Reporter] = (),
    on_step: Callable[[int], None] | None = None,
    show_progress: bool = False,
    run_outputs: bool = True,
) -> TrainResult:
    """Train LeNet-5 as `config` says, writing run-N/last.pt (and best.pt) each epoch, then test it.

    `reporters` hear the run start, each epoch end, a stop and the end; with `run_outputs` the run
    folder also gets metrics.csv and pictures. With `resume_from`, continue that checkpoint's run
    exactly where it stopped (use `resume_config` to get its settings). Ctrl-C or SIGTERM saves a
    resumable checkpoint and raises TrainingInterrupted. Launched by torchrun, it trains with
    DistributedDataParallel: only rank 0 reports and writes files.
    """
    cluster, device = start(config.device)
    run = None
    try:
        run = TrainingRun(config, cluster, device, resume_from)
        listeners = Reporters(
            [*reporters, *([MetricsCsv(), RunPictures()] if run_outputs else [])] if cluster.is_main else []
        )
        with run.open_folder(resume_from):
            listeners.on_start(run)
            stop = StopRequest()
            with stop_on_signals(stop, grace_s=2.0 if cluster.active else 0.0):
                for epoch in range(run.start_epoch, config.epochs):
                    progress = run.train_epoch(epoch, stop, on_step, show_progress)
                    if not progress.complete:
                        stopped = run.interrupted(progress, stop)  # saves where the epoch got to
                        listeners.on_stop(run)
                        raise stopped
                    record = run.end_epoch(progress)
                    listeners.on_epoch_end(run, record)
                    if stop.requested and not cluster.active:
                        stopped = run.interrupted(None, stop)
                        listeners.on_stop(run)
                        raise stopped
            result = run.finish()
            listeners.on_end(run, result)
            return result
    finally:
        if run is not None:
            run.release()  # the DistributedDataParallel wrapper goes before its process group
        finish(cluster)


class TrainingRun:
    """One training job: its data, model, optimizer, schedule, history and run folder.

    `fit` drives it: `open_folder`, then per epoch `train_epoch` and `end_epoch`, then `finish`.
    """

    def __init__(
        self, config: TrainConfig, cluster: Cluster, device: torch.device, resume_from: str | Path | None
    ):
        self.config, self.cluster, self.device = config, cluster, device
        self.started = time.perf_counter()
        initial = (
            load_checkpoint(config.init, device) if config.init and resume_from is None else None
        )  # fail fast
        train_full = load_split(config.dataset, config.data_dir, "train")
        self.test = load_split(config.dataset, config.data_dir, "test")
        train, self.val = split_train_val(train_full, config.val_size, config.seed)
        self.own_images = load_own_images(config, device, cluster) if config.images else None
        dataset_per_step = config.batch_size - (self.own_images.per_batch if self.own_images else 0)
        if dataset_per_step < cluster.world_size:
            raise LenetError(
                f"--batch-size {config.batch_size} with --image-share {config.image_share} leaves "
                f"{dataset_per_step} dataset images per step; use a larger --batch-size"
                if self.own_images
                else f"--batch-size {config.batch_size} is global and must be at least the number of "
                f"processes ({cluster.world_size})"
            )
        self.dataset_per_step = dataset_per_step
        self.steps_per_epoch = len(
            epoch_batches(torch.arange(len(train)), dataset_per_step, cluster.world_size)
        )
        self.train = Split(train.images.to(device), train.labels.to(device))

        torch.manual_seed(config.seed)
        self.model = LeNet5().to(device, memory_format=torch.channels_last)  # ~10% faster convs on CPU
        self.optimizer = make_optimizer(self.model, config, device)
        self.scheduler = make_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.history: list[EpochRecord] = []
        self.start_epoch, self.best_accuracy = 0, -1.0
        self.partial: EpochProgress | None = None
        self.init_from: dict[str, Any] | None = None
        if resume_from is not None:
            self._restore(resume_from)
        elif initial is not None:
            self._initialise(initial, config.init)
        self.trained: nn.Module = self.model
        if cluster.active:
            device_ids = [device.index] if device.type == "cuda" else None
            self.trained = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.run_dir = Path()
        self.best_checkpoint: Path | None = None
        self.resumed = resume_from is not None

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "last.pt"

    def release(self) -> None:
        """Drop the DistributedDataParallel wrapper (and its hooks into the process group) now, so it is
        not destroyed after the process group is, at interpreter exit."""
        if self.trained is not self.model:
            self.trained = self.model
            gc.collect()  # the wrapper's hooks hold reference cycles

    def _restore(self, resume_from: str | Path) -> None:
        saved = load_checkpoint(resume_from, self.device)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        _restore_scheduler(self.scheduler, saved, self.config, self.steps_per_epoch)
        if "rng_state" in saved:
            torch.set_rng_state(saved["rng_state"])
        if self.own_images is not None:
            self.own_images.check_same_as(saved.get("images"), resume_from)
        self.history = [EpochRecord(**record) for record in saved["history"]]
        self.start_epoch, self.best_accuracy = saved["epoch"], saved.get("best_val_accuracy", -1.0)
        self.init_from = saved.get("init")
        if saved.get("step"):
            self.partial = EpochProgress(saved["step"], saved["step_losses"].to(self.device))

    def _initialise(self, initial: dict[str, Any], init_path: str) -> None:
        """Start from another checkpoint's weights; the optimizer and schedule start afresh."""
        self.model.load_state_dict(initial["model"])
        metrics = initial.get("metrics") or {}
        self.init_from = {
            "path": str(init_path),
            "dataset": initial.get("dataset"),
            "test_accuracy": metrics.get("test_accuracy"),
            "created": initial.get("created"),
        }

    @contextmanager
    def open_folder(self, resume_from: str | Path | None) -> Iterator[None]:
        """Make (or reuse, on resume) the run folder before the first step; a run that fails before
        writing anything leaves no empty folder behind."""
        self.run_dir, created = _shared_run_dir(self.config, self.cluster, resume_from)
        if self.cluster.is_main:
            remove_stale_temporaries(self.run_dir)
        if self.val is not None and (self.run_dir / "best.pt").exists():
            self.best_checkpoint = self.run_dir / "best.pt"
        with _removed_if_left_empty(self.run_dir, created and self.cluster.is_main):
            yield

    def describe(self) -> dict[str, Any]:
        """What the console shows when the run starts."""
        return {
            "device": self.device,
            "world_size": self.cluster.world_size,
            "dataset": self.config.dataset,
            "train_images": len(self.train),
            "val_images": len(self.val) if self.val else 0,
            "test_images": len(self.test),
            "own_images": self.own_images.summary() if self.own_images else None,
            "init": self.init_from["path"] if self.init_from and not self.resumed else None,
            "run_dir": self.run_dir,
            "resumed_at": (self.start_epoch, self.partial.steps_done if self.partial else 0)
            if self.resumed
            else None,
        }

    def train_epoch(
        self, epoch: int, stop: StopRequest, on_step: Callable[[int], None] | None, show_progress: bool
    ) -> EpochProgress:
        """Epoch `epoch` (0-based), from where a resumed run stopped; stops early if `stop` is set."""
        self.epoch_started = time.perf_counter()
        with tqdm(
            total=self.steps_per_epoch,
            initial=self.partial.steps_done if self.partial else 0,
            desc=f"Epoch {epoch + 1}/{self.config.epochs}",
            file=sys.stderr,
            disable=None if show_progress and self.cluster.is_main else True,
            dynamic_ncols=True,
        ) as progress:
            try:
                state = train_one_epoch(
                    self.trained,
                    self.optimizer,
                    self.scheduler,
                    self.train,
                    epoch_order(len(self.train), self.config.seed, epoch),
                    self.dataset_per_step,
                    progress,
                    start=self.partial,
                    stop=stop,
                    on_step=on_step,
                    cluster=self.cluster,
                    extra=self.own_images.epoch_plan(epoch, self.steps_per_epoch)
                    if self.own_images
                    else None,
                )
            except NonFiniteLossError as error:
                kept = f"; the last good checkpoint is {self.checkpoint}" if self.history else ""
                raise NonFiniteLossError(f"{error} {epoch + 1}{kept} (try a lower --lr)") from None
        self.partial = None
        return state

    def end_epoch(self, state: EpochProgress) -> EpochRecord:
        """Record the finished epoch, validate, and save last.pt (and best.pt when it is the best)."""
        record = EpochRecord(
            epoch=len(self.history) + 1,
            train_loss=state.mean_loss(),
            lr=self.scheduler.get_last_lr()[0],
            seconds=time.perf_counter() - self.epoch_started,
        )
        if self.cluster.active:
            seen = self.cluster.gather([state.images_seen, int(state.index_sum)])
            record.data_per_rank = [{"images": images, "index_sum": total} for images, total in seen]
        if self.val is not None:
            val_metrics = evaluate(self.model, self.val, cluster=self.cluster)
            record.val_loss, record.val_accuracy = val_metrics.loss, val_metrics.accuracy
        self.history.append(record)
        metrics = {"val_accuracy": record.val_accuracy, "val_loss": record.val_loss}
        self.save(self.checkpoint, None, metrics)
        if record.val_accuracy is not None and record.val_accuracy > self.best_accuracy:
            self.best_accuracy = record.val_accuracy
            self.best_checkpoint = self.save(self.run_dir / "best.pt", None, metrics)
        return record

    def interrupted(self, state: EpochProgress | None, stop: StopRequest) -> TrainingInterrupted:
        """Save where a stopped epoch got to (state None: it had finished) and say how to resume."""
        epoch, step = len(self.history), self.steps_per_epoch
        signal_number = stop.signal_number or 2
        if state is not None:
            self.save(self.checkpoint, state, {})
            self.cluster.barrier()
            signal_number = int(self.cluster.max_(torch.tensor([stop.signal_number or 0])).item()) or 2
            epoch, step = epoch + 1, state.steps_done
        return TrainingInterrupted(
            self.checkpoint, signal_number, epoch, step, self.steps_per_epoch, self.cluster.rank
        )

    def finish(self) -> TrainResult:
        """Test the final weights and save them with the test metrics."""
        test = evaluate(self.model, self.test, cluster=self.cluster)
        last = self.history[-1]
        self.save(
            self.checkpoint,
            None,
            {
                "val_accuracy": last.val_accuracy,
                "val_loss": last.val_loss,
                "test_accuracy": test.accuracy,
                "test_loss": test.loss,
            },
        )
        result = TrainResult(
            self.config, str(self.device), self.run_dir, self.checkpoint, self.best_checkpoint
        )
        result.history, result.test = self.history, test
        result.rank, result.world_size = self.cluster.rank, self.cluster.world_size
        result.seconds = time.perf_counter() - self.started
        return result

    def save(self, path: Path, progress: EpochProgress | None, metrics: dict[str, float | None]) -> Path:
        """Write a resumable checkpoint (rank 0 only; the others return the path)."""
        if self.cluster.is_main:
            save_checkpoint(path, self._payload(progress, metrics))
        return path

    def _payload(self, progress: EpochProgress | None, metrics: dict[str, float | None]) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model": {
                key: value.detach().cpu().contiguous() for key, value in self.model.state_dict().items()
            },
            "optimizer": self.optimizer.state_dict(),
            "scheduler": _plain_scheduler_state(self.scheduler),
            "epoch": len(self.history),
            "step": progress.steps_done if progress else 0,
            "step_losses": progress.step_losses.cpu() if progress else torch.zeros(0),
            "rng_state": torch.get_rng_state(),
            "history": [record.to_dict() for record in self.history],
            "best_val_accuracy": self.best_accuracy,
            "config": self.config.to_dict(),
            "dataset": self.config.dataset,
            "world_size": self.cluster.world_size,
            "images": self.own_images.identity() if self.own_images else None,
            "init": self.init_from,
            "metrics": metrics,
            "versions": versions(),
            "created": now_iso(),
        }


@contextmanager
def _removed_if_left_empty(run_dir: Path, created: bool) -> Iterator[None]:
    """A run that fails before its first checkpoint leaves no empty run-N folder behind."""
    try:
        yield
    except BaseException:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def _shared_run_dir(
    config: TrainConfig, cluster: Cluster, resume_from: str | Path | None
) -> tuple[Path, bool]:
    """Rank 0 makes (and checks) the run folder; every rank learns it (and whether it is new), or the error."""
    outcome: tuple[str, bool] | LenetError
    if cluster.is_main:
        try:
            if resume_from is not None and Path(resume_from).name == "last.pt":
                outcome = (str(Path(resume_from).parent), False)  # a resumed last.pt continues in its folder
            else:
                outcome = (str(create_run_dir(config.checkpoint_dir)), True)
        except LenetError as error:
            outcome = error
    else:
        outcome = ("", False)
    outcome = cluster.share(outcome)
    if isinstance(outcome, LenetError):
        raise outcome
    return Path(outcome[0]), outcome[1]


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
