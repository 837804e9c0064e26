"""Training as a whole: `fit` reads as the recipe (load, build, then per epoch train, validate, tell the
reporters, save), driving a `TrainingRun` that holds the job's state.

The parts live below: the epoch loop in `loop.py`, the model/optimizer/schedule in `recipe.py`, the data
in `inputs.py`, the folder in `run_folder.py`, the file format in `checkpoint.py`, the time budget and
patience in `stopping.py`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from lenet_cli.core.config import TrainConfig
from lenet_cli.core.distributed import Cluster, distributed_model, join_cluster, leave_cluster
from lenet_cli.core.errors import LenetError, StoppedBySignal
from lenet_cli.core.interrupts import StopRequest, stop_on_signals
from lenet_cli.core.records import EpochRecord, Misclassified, TrainResult
from lenet_cli.formats.checkpoint import TrainingState, read_init, read_training, save_training
from lenet_cli.inference.evaluate import evaluate, evaluate_with_mistakes
from lenet_cli.training.inputs import TrainingData, load_training_data
from lenet_cli.training.loop import EpochProgress, NonFiniteLossError, train_one_epoch
from lenet_cli.training.recipe import Recipe, build_recipe, planned_steps, refit_schedule, restore_recipe
from lenet_cli.training.reporters import MetricsCsv, Reporter, Reporters, RunPictures
from lenet_cli.training.run_folder import open_run_folder
from lenet_cli.training.stopping import TimeBudget, budget_summary, patience_ran_out
from lenet_cli.training.tensorboard import tensorboard_log


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
    exactly where it stopped (use `checkpoint.resume_config` for its settings). Ctrl-C or SIGTERM saves
    a resumable checkpoint and raises TrainingInterrupted. Launched by torchrun, it trains with
    DistributedDataParallel: only rank 0 reports and writes files.
    """
    started = time.perf_counter()
    cluster, device = join_cluster(config.device)
    try:
        saved = read_training(resume_from, device) if resume_from is not None else None
        initial = read_init(config.init, device) if config.init and saved is None else None  # fail fast
        data = load_training_data(config, device, cluster)
        recipe = build_recipe(config, device, data.steps_per_epoch)
        if saved is not None:
            restore_recipe(recipe, saved, config, data.steps_per_epoch)
            if data.own_images is not None:
                data.own_images.check_same_as(saved.images, resume_from)
            if data.styles is not None:
                data.styles.check_same_as(saved.styles, resume_from)
            if data.cuts is not None:
                data.cuts.check_same_as(saved.cuts, resume_from)
            if data.numbers is not None:
                data.numbers.check_same_as(saved.numbers, resume_from)
        elif initial is not None:
            recipe.model.load_state_dict(initial[0])  # the optimizer and schedule start afresh
        if data.numbers is not None:
            data.numbers.follow(recipe.model)  # re-aligned with the weights at each epoch's start
        outputs = [*reporters, *([MetricsCsv(), RunPictures(), *tensorboard_log()] if run_outputs else [])]
        listeners = Reporters(outputs if cluster.is_main else [])
        with (
            distributed_model(recipe.model, cluster, device) as trained,
            open_run_folder(config.checkpoint_dir, cluster, resume_from) as run_dir,
        ):
            init_from = initial[1] if initial else None
            run = TrainingRun(config, cluster, data, recipe, trained, run_dir, saved, init_from, started)
            run.budget = _time_budget(run, planned_steps(recipe, config) if saved else None)
            return _train(run, listeners, on_step, show_progress)
    finally:
        leave_cluster(cluster)


def _train(
    run: TrainingRun, listeners: Reporter, on_step: Callable[[int], None] | None, show_progress: bool
) -> TrainResult:
    """The epochs: train, validate and save, tell the reporters; stop cleanly on a signal."""
    listeners.on_start(run)
    stop = StopRequest()
    with stop_on_signals(stop, grace_s=2.0 if run.cluster.active else 0.0):
        for epoch in range(run.start_epoch, run.config.epochs):
            progress = _train_epoch(run, epoch, stop, on_step, show_progress)
            if progress.complete:
                listeners.on_epoch_end(run, run.end_epoch(progress))
            else:
                run.save(run.checkpoint, progress, {})  # where the epoch got to
            if not progress.complete or (stop.requested and not run.cluster.active):
                stopped = _interruption(run, progress, stop)
                listeners.on_stop(run)
                raise stopped
            if run.ends_early():
                break
    result = run.finish()
    listeners.on_end(run, result)
    return result


def _train_epoch(
    run: TrainingRun,
    epoch: int,
    stop: StopRequest,
    on_step: Callable[[int], None] | None,
    show_progress: bool,
) -> EpochProgress:
    """Epoch `epoch` (0-based), from where a resumed run stopped; stops early if `stop` is set."""
    run.epoch_started = time.perf_counter()
    planned = run.budget.total_steps if run.budget else run.config.epochs * run.data.steps_per_epoch
    with tqdm(
        total=min(run.data.steps_per_epoch, planned - epoch * run.data.steps_per_epoch),
        initial=run.partial.steps_done if run.partial else 0,
        desc=f"Epoch {epoch + 1}/{run.epochs_planned}",
        file=sys.stderr,
        disable=None if show_progress and run.cluster.is_main else True,
        dynamic_ncols=True,
    ) as progress:
        try:
            state = train_one_epoch(
                run.trained,
                run.recipe.optimizer,
                run.recipe.scheduler,
                run.data.plan(epoch),
                run.cluster,
                start=run.partial,
                stop=stop,
                progress=progress,
                on_step=on_step,
                budget=run.budget,
                label_smoothing=run.config.smoothing,
            )
        except NonFiniteLossError as error:
            error.last_good = run.checkpoint if run.history else None
            raise
    run.partial = None
    return state


def _time_budget(run: TrainingRun, planned: int | None) -> TimeBudget | None:
    """--time: a budget that fits the schedule to the seconds left (a resumed run keeps the plan it made)."""
    config, data = run.config, run.data
    if config.time is None:
        return None
    cap = config.epochs * data.steps_per_epoch
    if planned is not None and planned < cap and run.steps >= planned:
        raise LenetError(
            f"{run.checkpoint} has finished the {planned:,} steps its --time budget planned; "
            f"to train further, start a new run from its weights: lenet train --init {run.checkpoint}"
        )
    return TimeBudget(
        config.time,
        run.started,
        cap,
        lambda total, done: refit_schedule(run.recipe, config, total, done),
        run.cluster,
        config.images_per_step,
        (len(data.val) if data.val else 0, len(data.test)),
        data.steps_per_epoch,
        planned if planned is not None and planned < cap else None,
    )


def _interruption(run: TrainingRun, state: EpochProgress, stop: StopRequest) -> TrainingInterrupted:
    """How to tell of a stop (all ranks agree on the signal); `state` is where the epoch got to."""
    epoch, step = len(run.history), run.data.steps_per_epoch
    signal_number = stop.signal_number or 2
    if not state.complete:
        run.cluster.barrier()
        signal_number = int(run.cluster.max_(torch.tensor([stop.signal_number or 0])).item()) or 2
        epoch, step = epoch + 1, state.steps_done
    return TrainingInterrupted(
        run.checkpoint, signal_number, epoch, step, run.data.steps_per_epoch, run.cluster.rank
    )


class TrainingRun:
    """One training job under way: its data, recipe, history and run folder. What reporters receive."""

    def __init__(
        self,
        config: TrainConfig,
        cluster: Cluster,
        data: TrainingData,
        recipe: Recipe,
        trained: nn.Module,
        run_dir: Path,
        saved: TrainingState | None,
        init_from: dict[str, Any] | None,
        started: float,
    ):
        self.config, self.cluster, self.data, self.recipe = config, cluster, data, recipe
        self.model, self.device = recipe.model, data.train.images.device
        self.trained = trained  # what the loop calls: the model, or its DistributedDataParallel wrapper
        self.run_dir = run_dir
        self.epoch_started = started  # set again as each epoch starts
        self.started = started  # when fit began: the run's seconds include reading the data
        self.init_from = saved.init if saved else init_from  # the checkpoint it started from (--init)
        self.resumed = saved is not None
        self.history: list[EpochRecord] = saved.history if saved else []
        self.start_epoch = saved.epoch if saved else 0
        self.best_accuracy = saved.best_val_accuracy if saved else -1.0
        self.partial = (
            EpochProgress(saved.step, saved.step_losses.to(self.device)) if saved and saved.step else None
        )
        best = run_dir / "best.pt"
        self.best_checkpoint = best if data.val is not None and best.exists() else None
        self.budget: TimeBudget | None = None  # --time
        self.ended: str | None = None  # how a --time run ended, or why --patience stopped it
        self.last_epoch: EpochProgress | None = None  # the losses of the epoch just finished, step by step
        self.test_mistakes: list[Misclassified] | None = None  # set by finish() in a single process

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "last.pt"

    def describe(self) -> dict[str, Any]:
        """What the console shows when the run starts."""
        return {
            "device": self.device,
            "world_size": self.cluster.world_size,
            "dataset": self.config.dataset,
            **self.data.describe(),
            "steps_per_epoch": self.data.steps_per_epoch,
            "init": self.init_from["path"] if self.init_from and not self.resumed else None,
            "run_dir": self.run_dir,
            "resumed_at": (self.start_epoch, self.partial.steps_done if self.partial else 0)
            if self.resumed
            else None,
        }

    def end_epoch(self, state: EpochProgress) -> EpochRecord:
        """Record the finished epoch, validate, and save last.pt (and best.pt when it is the best)."""
        record = EpochRecord(
            epoch=len(self.history) + 1,
            train_loss=state.mean_loss(),
            lr=self.recipe.scheduler.get_last_lr()[0],
            seconds=time.perf_counter() - self.epoch_started,
            train_accuracy=state.accuracy(),
        )
        self.last_epoch = state
        if self.cluster.active:
            seen = self.cluster.gather([state.images_seen, int(state.index_sum)])
            record.data_per_rank = [{"images": images, "index_sum": total} for images, total in seen]
        if self.data.val is not None:
            val_metrics = evaluate(self.model, self.data.val, cluster=self.cluster)
            record.val_loss, record.val_accuracy = val_metrics.loss, val_metrics.accuracy
        self.history.append(record)
        metrics = {"val_accuracy": record.val_accuracy, "val_loss": record.val_loss}
        self.save(self.checkpoint, None, metrics)
        if record.val_accuracy is not None and record.val_accuracy > self.best_accuracy:
            self.best_accuracy = record.val_accuracy
            self.best_checkpoint = self.save(self.run_dir / "best.pt", None, metrics)
        return record

    @property
    def epochs_planned(self) -> int:
        """--epochs, or fewer when a time budget plans fewer steps (its last epoch may be a short one)."""
        if self.budget is None:
            return self.config.epochs
        return -(-self.budget.total_steps // self.data.steps_per_epoch)

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far, in all epochs."""
        return self.recipe.scheduler.last_epoch

    def ends_early(self) -> bool:
        """Whether the time budget's last step is done or patience ran out (and why, in `ended`)."""
        if self.budget is not None and self.steps >= self.budget.total_steps:
            self.ended = budget_summary(self.budget, self.steps, self.data.steps_per_epoch)
        else:
            self.ended = patience_ran_out(self.history, self.config.patience)
        return self.ended is not None

    def finish(self) -> TrainResult:
        """Test the final weights and save them with the test metrics (and keep the mistakes, for the
        reporters' pictures, when one process tested all of them)."""
        if self.cluster.active:
            test = evaluate(self.model, self.data.test, cluster=self.cluster)
        else:
            test, self.test_mistakes = evaluate_with_mistakes(self.model, self.data.test)
        last = self.history[-1]
        metrics = {"val_accuracy": last.val_accuracy, "val_loss": last.val_loss}
        self.save(self.checkpoint, None, {**metrics, "test_accuracy": test.accuracy, "test_loss": test.loss})
        return TrainResult(
            self.config,
            str(self.device),
            self.run_dir,
            self.checkpoint,
            self.best_checkpoint,
            self.history,
            test,
            time.perf_counter() - self.started,
            self.cluster.rank,
            self.cluster.world_size,
            self.steps,
            self.ended,
        )

    def save(self, path: Path, progress: EpochProgress | None, metrics: dict[str, float | None]) -> Path:
        """Write a resumable checkpoint (rank 0 only; the others return the path)."""
        if self.cluster.is_main:
            save_training(path, _training_state(self, progress), metrics)
        return path


def _training_state(run: TrainingRun, progress: EpochProgress | None) -> TrainingState:
    """What a checkpoint written now restores."""
    return TrainingState(
        config=run.config,
        model=run.model.state_dict(),
        optimizer=run.recipe.optimizer.state_dict(),
        scheduler=run.recipe.scheduler.state_dict(),
        epoch=len(run.history),
        rng_state=torch.get_rng_state(),
        step=progress.steps_done if progress else 0,
        step_losses=progress.step_losses if progress else torch.zeros(0),
        history=run.history,
        best_val_accuracy=run.best_accuracy,
        world_size=run.cluster.world_size,
        images=run.data.own_images.identity() if run.data.own_images else None,
        styles=run.data.styles.identity() if run.data.styles else None,
        cuts=run.data.cuts.identity() if run.data.cuts else None,
        numbers=run.data.numbers.identity() if run.data.numbers else None,
        init=run.init_from,
    )
