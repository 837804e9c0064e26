"""`lenet train --progress-json`: progress as JSON lines on stderr, for a program that runs `lenet train`
and shows a progress bar of its own (serve's Teach). Hidden from --help: people get tqdm's bar."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from lenet_cli.cli.render import ConsoleReport
from lenet_cli.core.records import EpochRecord
from lenet_cli.training.reporters import Reporter, RunView


class JsonProgress(Reporter):
    """`train --progress-json`: one JSON line on stderr when the run starts (its folder and steps), then
    the steps done, a few times a second, for a program that shows a progress bar (serve's Teach)."""

    EVERY_S = 0.25

    def __init__(self) -> None:
        self.steps_per_epoch, self.epochs, self.epoch, self.last = 0, 1, 0, 0.0

    def on_start(self, run: RunView) -> None:
        described = run.describe()
        self.steps_per_epoch, self.epochs = described["steps_per_epoch"], run.config.epochs
        self.epoch = len(run.history)
        self._write(
            {"run_dir": str(run.run_dir), "step": self.epoch * self.steps_per_epoch, "steps": self.steps}
        )

    def on_epoch_end(self, run: RunView, record: EpochRecord) -> None:
        self.epoch = len(run.history)

    def on_step(self, step: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.EVERY_S or step == self.steps_per_epoch:
            self.last = now
            self._write({"step": self.epoch * self.steps_per_epoch + step, "steps": self.steps})

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @staticmethod
    def _write(document: dict[str, Any]) -> None:
        sys.stderr.write(json.dumps({"progress": document}) + "\n")
        sys.stderr.flush()


def train_listeners(console: Console, progress_json: bool) -> tuple[list[Reporter], Callable | None]:
    """train's reporters and step callback: the console lines, and with --progress-json the JSON lines."""
    if not progress_json:
        return [ConsoleReport(console)], None
    progress = JsonProgress()
    return [ConsoleReport(console), progress], progress.on_step
