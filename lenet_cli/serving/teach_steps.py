"""One Teach run, step by step, on a thread of its own: split the drawings, learn from the learn share
in a `lenet train` child (a check), measure before and after, learn from every drawing if the check
passed, decide by the swap rule, and report each step to the Teacher (teaching.py)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lenet_cli.core.errors import LenetError
from lenet_cli.core.writing import make_folder
from lenet_cli.data.datasets import Split
from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.inference.evaluate import evaluate
from lenet_cli.serving.teach_child import ChildLimits, TrainChild
from lenet_cli.serving.teach_run import (
    FEW_HELD_OUT,
    HELD_OUT_VIEWS,
    Figures,
    SwapRule,
    labelled_split,
    measure_held_out,
    split_drawings,
)
from lenet_cli.serving.teach_state import Answering, mark_run


@dataclass
class TeachSettings:
    collect_dir: Path
    data_dir: Path  # where the dataset's IDX files are (mixed in, and tested on)
    checkpoint_dir: Path  # taught runs go to run-N folders here
    names: list[str]
    rule: SwapRule = field(default_factory=SwapRule)
    learn_all: bool = True  # once the check passes, the model that answers learns from all the drawings
    child_limits: ChildLimits = field(default_factory=ChildLimits)  # when a child is ended
    child_command: list[str] | None = None  # what runs as `lenet` for a child (None: this lenet)


class Lessons:
    """The `lenet train --init` children of one Teach run, one at a time: a check on the learn share, then,
    if it passes, all the drawings. Starting one and the server's stop take one lock, so a child never
    starts after the stop that would have ended it."""

    def __init__(self, settings: TeachSettings, stopping: threading.Event):
        self.settings, self.stopping = settings, stopping  # the server's: set once it stops
        self.lock = threading.Lock()
        self.current: TrainChild | None = None
        self.started: list[TrainChild] = []

    def start(self, info: ModelInfo, folders: list[Path], checked_by: str | None = None) -> None:
        # Marked at once: a run folder of a server killed outright is never taken for an accepted model.
        marks = {"checked_by": checked_by} if checked_by else {}
        with self.lock:
            if self.stopping.is_set():
                raise LenetError("the server is stopping")
            self.current = TrainChild(
                train_arguments(info, folders, self.settings),
                lambda run: mark_run(run, "learning", **marks),
                self.settings.child_limits,
                self.settings.child_command,
            )
            self.started.append(self.current)

    def finish(self) -> tuple[Answering, dict[str, Any]]:
        """Wait for the child; the model it made, loaded."""
        result = self.current.wait()
        model, info = load_any_model(result["checkpoint"], "cpu")
        return Answering(model.eval(), info, "taught", test_accuracy=result["test_accuracy"]), result

    def run_dirs(self) -> list[Path]:
        return [child.run_dir for child in self.started if child.run_dir is not None]

    def kill(self) -> None:
        with self.lock:
            if self.current is not None:
                self.current.end("the server is stopping")


class TeachRun:
    """The steps of one run. `report(**changes)` updates the state the page sees; `accept(taught)` lets the
    taught model answer unless the server is stopping (False then)."""

    def __init__(
        self,
        settings: TeachSettings,
        lessons: Lessons,
        report: Callable[..., None],
        accept: Callable[[Answering], bool],
    ):
        self.settings, self.lessons, self.report, self.accept = settings, lessons, report, accept
        self.started_at = time.monotonic()

    def run(self, before: Answering, test: Split) -> None:
        workspace = None
        try:
            sets = make_folder(self.settings.checkpoint_dir / "teach-sets", "folder ")
            workspace = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=sets))
            learn, held_dir, unreadable = split_drawings(
                self.settings.collect_dir, workspace, self.settings.names
            )
            held = labelled_split(held_dir, self.settings.names)
            self.report(
                held_out_count=len(held),
                held_out_views=len(HELD_OUT_VIEWS),
                learned_count=sum(1 for _ in learn.glob("*/*")),
                note=_held_out_note(len(held), unreadable),
            )
            self.lessons.start(before.info, [learn])
            self.report(state="learning", phase="check")
            if before.test_accuracy is None:  # measured once per model: the taught ones come measured
                before.test_accuracy = evaluate(before.model, test).accuracy
            figures_before = Figures(measure_held_out(before.model, held), before.test_accuracy)
            self.report(before=figures_before.to_dict())
            checked, result = self.lessons.finish()
            self.report(state="measuring", run=result["run_dir"])
            # The child tested this model on the same test set as it ended; only the drawings are left.
            figures_after = Figures(measure_held_out(checked.model, held), result["test_accuracy"])
            run_dir = Path(result["run_dir"])
            if self.settings.learn_all and self.settings.rule.refusal(figures_before, figures_after) is None:
                checked, figures_after, run_dir = self._learn_all(
                    before, [learn, held_dir], figures_before, figures_after, run_dir
                )
            self._decide(checked, figures_before, figures_after, run_dir)
        except Exception as error:  # noqa: BLE001 - the thread's end: every failure is told to the page
            self._fail(error, workspace)

    def _learn_all(
        self,
        before: Answering,
        folders: list[Path],
        figures_before: Figures,
        checked: Figures,
        check_dir: Path,
    ) -> tuple[Answering, Figures, Path]:
        """The held-out drawings showed that teaching helps; the model that answers then learns from all the
        drawings, as `lenet train --images` on the command line would. Its held-out figure is the check's."""
        mark_run(check_dir, "checked", before=figures_before.to_dict(), after=checked.to_dict())
        self.lessons.start(before.info, folders, checked_by=str(check_dir))
        self.report(state="learning", phase="all")
        taught, result = self.lessons.finish()
        self.report(
            run=result["run_dir"], learned_count=sum(1 for folder in folders for _ in folder.glob("*/*"))
        )
        return taught, Figures(checked.held_out, result["test_accuracy"]), Path(result["run_dir"])

    def _decide(self, taught: Answering, before: Figures, after: Figures, run_dir: Path) -> None:
        """Accepted or kept out, in the run's record and on the page. A stop asked meanwhile wins: the run
        is then a stopped one, and nothing of it is kept."""
        refusal = self.settings.rule.refusal(before, after)
        if refusal is None and not self.accept(taught):
            raise LenetError("the server is stopping")
        status = "accepted" if refusal is None else "kept out"
        init = taught.info.record.get("init")
        mark_run(run_dir, status, why=refusal, before=before.to_dict(), after=after.to_dict(), init=init)
        self.report(state=status, after=after.to_dict(), why=refusal, seconds=self.seconds())

    def _fail(self, error: Exception, workspace: Path | None) -> None:
        if self.lessons.stopping.is_set():  # the server is stopping: nothing of this run is kept
            for folder in [*self.lessons.run_dirs(), workspace]:
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
            self.report(state="stopped")
            return
        child = self.lessons.current
        if child is not None and child.run_dir is not None and child.run_dir.is_dir():
            mark_run(child.run_dir, "failed", why=str(error))
        message = (
            str(error) if isinstance(error, LenetError) else f"unexpected {type(error).__name__}: {error}"
        )
        self.report(state="failed", error=message, seconds=self.seconds())

    def seconds(self) -> float:
        return round(time.monotonic() - self.started_at, 1)


def train_arguments(info: ModelInfo, folders: list[Path], settings: TeachSettings) -> list[str]:
    """`lenet train`'s arguments for a run: the command line's own fine-tune, on these folders."""
    images = [argument for folder in folders for argument in ("--images", str(folder))]
    return [
        "--init",
        info.path,
        *images,
        "--epochs",
        "1",
        "--dataset",
        info.dataset,
        "--data-dir",
        str(settings.data_dir),
        "--checkpoint-dir",
        str(settings.checkpoint_dir),
        "--device",
        "cpu",
    ]


def _held_out_note(count: int, unreadable: int) -> str | None:
    notes = []
    if count < FEW_HELD_OUT:
        notes.append(
            f"only {count} held-out drawings, so the figures are rough (each is "
            f"{100 / count:.0f} points); save more for firmer ones"
        )
    if unreadable:
        notes.append(f"{unreadable} drawings could not be read and were left out")
    return "; ".join(notes) or None
