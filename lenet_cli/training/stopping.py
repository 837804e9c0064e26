"""When a run ends before its last epoch: a time budget (`--time`) that fits the one-cycle schedule to the
seconds given, and patience (`--patience`) that stops once validation accuracy stops improving.

The budget cannot know in advance how many steps fit, so it measures: after a few warm-up steps it times
the next ones, plans the schedule's total steps to end (test included) when the budget does, and corrects
the plan every REPLAN_EVERY steps as the speed changes (a shared machine, epoch ends, validation). The run
then ends at the planned step, so the schedule reaches its end and the model is a finished one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from lenet_cli.core.distributed import Cluster
from lenet_cli.core.records import EpochRecord

WARMUP_STEPS = 10  # the first steps are slow (memory, kernel choice): not timed
MEASURE_STEPS = 30  # then the time of this many steps makes the first plan
REPLAN_EVERY = 100  # steps between corrections of the plan
FORWARD_SHARE = 1 / 3  # an image's forward pass is about a third of its training step (forward + backward)
SAVE_S = 0.05  # writing a checkpoint, a few hundred KB


class TimeBudget:
    """Plans how many steps a run takes so that it ends within `seconds` of `started`.

    `refit(total_steps, steps_done)` re-plans the learning-rate schedule; `cap` is the most steps the
    run may take (--epochs). Under torchrun, rank 0's plan is shared so that every rank stops together.
    """

    def __init__(
        self,
        seconds: float,
        started: float,
        cap: int,
        refit: Callable[[int, int], None],
        cluster: Cluster,
        images_per_step: int,
        eval_images: tuple[int, int],  # (validated each epoch, tested at the end)
        steps_per_epoch: int,
        planned: int | None = None,  # a resumed run's plan: kept as it is
    ):
        self.seconds, self.deadline, self.cap, self.refit = seconds, started + seconds, cap, refit
        self.cluster, self.images_per_step, self.steps_per_epoch = cluster, images_per_step, steps_per_epoch
        self.val_images, self.test_images = eval_images
        self.total_steps = planned or cap
        self.fixed = planned is not None
        self.timed_from: tuple[int, float] | None = None  # (step, when) the timing started
        self.first_step: int | None = None

    def after_step(self, step: int) -> bool:
        """Called after global step `step` (1-based) on every rank; True when the run's last step is done."""
        if self.first_step is None:
            self.first_step = step - 1
        if not self.fixed:
            done_here = step - self.first_step
            if done_here == WARMUP_STEPS:
                self.timed_from = (step, time.perf_counter())
            elif self.timed_from is not None and (
                done_here == WARMUP_STEPS + MEASURE_STEPS
                or (done_here > WARMUP_STEPS + MEASURE_STEPS and step % REPLAN_EVERY == 0)
            ):
                self._plan(step)
        return step >= self.total_steps

    def _plan(self, step: int) -> None:
        """Fit the schedule to the time left at the speed measured since the timing started."""
        assert self.timed_from is not None
        now = time.perf_counter()
        seconds_per_step = (now - self.timed_from[1]) / (step - self.timed_from[0])
        seconds_per_image = seconds_per_step / self.images_per_step * FORWARD_SHARE
        epoch_ends = max(0, (self.total_steps - step) // self.steps_per_epoch)
        reserve = self.test_images * seconds_per_image + SAVE_S
        reserve += epoch_ends * (self.val_images * seconds_per_image + SAVE_S)
        steps_left = max(1, math.floor((self.deadline - now - reserve) / seconds_per_step))
        total = self.cluster.share(min(self.cap, step + steps_left))  # rank 0's plan for every rank
        if total != self.total_steps:
            self.total_steps = total
            self.refit(total, step)


def patience_ran_out(history: Sequence[EpochRecord], patience: int) -> str | None:
    """Why to stop now, if validation accuracy has not improved for `patience` epochs; else None."""
    accuracies = [record.val_accuracy for record in history]
    if patience <= 0 or not accuracies or None in accuracies:
        return None
    best = max(range(len(accuracies)), key=lambda index: (accuracies[index], -index))  # the first best
    if len(history) - (best + 1) < patience:
        return None
    return (
        f"Stopped early after epoch {len(history)}: validation accuracy has not improved for {patience} "
        f"epoch{'s' if patience != 1 else ''} (best {100 * accuracies[best]:.2f}% at epoch {best + 1}, "
        "kept in best.pt)"
    )


def budget_summary(budget: TimeBudget, steps: int, steps_per_epoch: int) -> str:
    """What the run managed in its time budget, for the end of the run."""
    epochs, extra = divmod(steps, steps_per_epoch)
    managed = f"{epochs} epoch{'s' if epochs != 1 else ''}" + (
        f" and {extra:,} step{'s' if extra != 1 else ''}" if extra else ""
    )
    how = (
        "--epochs ended it first"
        if budget.total_steps >= budget.cap
        else "the schedule was fitted to it and ran to its end"
    )
    return f"Time budget {budget.seconds:g}s: trained {managed} ({steps:,} steps); {how}"
