"""What a training run leaves behind besides checkpoints: metrics.csv and pictures in its folder.

A reporter listens to a run at fixed points (start, end of each epoch, a stop on a signal, the end)
and writes one kind of output; the training loop knows nothing of CSV or matplotlib. Under torchrun
only rank 0's reporters are called.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lenet_cli.core.config import TrainConfig, class_names
from lenet_cli.core.records import EpochRecord, Misclassified, TrainResult
from lenet_cli.core.writing import atomic_write
from lenet_cli.inference.plots import draw_confusion_matrix, draw_curves

if TYPE_CHECKING:
    import torch

    from lenet_cli.training.inputs import TrainingData
    from lenet_cli.training.loop import EpochProgress

METRICS_COLUMNS = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds")


class RunView(Protocol):
    """What a reporter may read of the run it listens to (`fit.TrainingRun` is one)."""

    config: TrainConfig
    device: torch.device
    run_dir: Path
    history: list[EpochRecord]
    model: torch.nn.Module
    data: TrainingData
    last_epoch: EpochProgress | None  # the epoch just finished, its losses step by step
    epochs_planned: int  # --epochs, or fewer when a time budget (--time) plans fewer
    test_mistakes: list[Misclassified] | None  # the misclassified test images, once tested (one process)

    def describe(self) -> dict[str, Any]:
        """Where it trains and on what, as the console shows it at the start."""
        ...


class Reporter:
    """Override the moments you care about; each gets the run, which owns model, history and folder."""

    def on_start(self, run: RunView) -> None:
        pass

    def on_epoch_end(self, run: RunView, record: EpochRecord) -> None:
        pass

    def on_stop(self, run: RunView) -> None:
        """Training stopped on a signal, after saving a resumable checkpoint."""

    def on_end(self, run: RunView, result: TrainResult) -> None:
        pass


class Reporters(Reporter):
    """Several reporters called in order."""

    def __init__(self, reporters: Sequence[Reporter]):
        self.reporters = list(reporters)

    def on_start(self, run: RunView) -> None:
        for reporter in self.reporters:
            reporter.on_start(run)

    def on_epoch_end(self, run: RunView, record: EpochRecord) -> None:
        for reporter in self.reporters:
            reporter.on_epoch_end(run, record)

    def on_stop(self, run: RunView) -> None:
        for reporter in self.reporters:
            reporter.on_stop(run)

    def on_end(self, run: RunView, result: TrainResult) -> None:
        for reporter in self.reporters:
            reporter.on_end(run, result)


class MetricsCsv(Reporter):
    """run-N/metrics.csv, one row per finished epoch.

    The file is rewritten whole from the run's history (which the checkpoint carries) after every
    epoch and when a run resumes, so after any interruption it holds each epoch exactly once.
    """

    def on_start(self, run: RunView) -> None:
        if run.history:  # a resumed run: rows of epochs its checkpoint has, whatever the file had
            write_metrics_csv(run.run_dir / "metrics.csv", run.history)

    def on_epoch_end(self, run: RunView, record: EpochRecord) -> None:
        write_metrics_csv(run.run_dir / "metrics.csv", run.history)


class RunPictures(Reporter):
    """run-N/curves.png when training ends or stops, and confusion_matrix.png of the test set at the end."""

    def on_stop(self, run: RunView) -> None:
        if run.history:
            draw_curves(run.history, run.run_dir / "curves.png")

    def on_end(self, run: RunView, result: TrainResult) -> None:
        draw_curves(run.history, run.run_dir / "curves.png")
        if result.test is not None:
            draw_confusion_matrix(
                result.test.confusion,
                class_names(run.config.dataset),
                run.run_dir / "confusion_matrix.png",
                title=f"{run.config.dataset} test set",
            )


def write_metrics_csv(path: Path, history: Sequence[EpochRecord]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for record in history:
        writer.writerow(
            ["" if (value := getattr(record, column)) is None else value for column in METRICS_COLUMNS]
        )
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue().encode()), "metrics file")
