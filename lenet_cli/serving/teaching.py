"""Teach on the page: fine-tune the model now answering on the drawings collected so far, in the
background, and let the taught model answer only when it is better.

One run at a time, on a thread of its own that starts `lenet train --init CURRENT --images LEARN
--epochs 1` as a child process (teach_run.py) and waits for it, so serving never waits: the page keeps
answering while the child learns. The collected drawings are split per class into a share to learn
from and a share held out (hard links into `CHECKPOINT_DIR/teach-sets/<time>-<random>/`; the collected
files are never changed), and the model before and the model after are measured on the held-out
drawings and on the dataset's test set. The taught model is a normal run folder (`CHECKPOINT_DIR/run-N/`, its `init`
the model it started from) with `teach.json` beside it saying whether it was accepted and why; only an
accepted one answers, swapped in between two forward passes. Undo goes back to the model before.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from lenet_cli.core.errors import LenetError
from lenet_cli.core.writing import atomic_write, make_folder
from lenet_cli.data.datasets import Split, find_split
from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.formats.shipped import TEACH_RECORD
from lenet_cli.inference.evaluate import evaluate
from lenet_cli.serving.teach_run import (
    FEW_HELD_OUT,
    HELD_OUT_VIEWS,
    MIN_PER_CLASS,
    Figures,
    SwapRule,
    TrainChild,
    labelled_split,
    measure_held_out,
    missing_per_class,
    split_drawings,
)

RUNNING = ("starting", "learning", "measuring")


class Refused(Exception):
    """A teach request that cannot be served now: answered with `status` and the message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Answering:
    """The model that answers requests, and where it came from."""

    model: nn.Module
    info: ModelInfo
    source: str  # "started with", "taught", "undo"
    since: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    test_accuracy: float | None = None  # on the test set in --data-dir, once measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.info.path,
            "source": self.source,
            "since": self.since,
            "init": (self.info.record.get("init") or {}).get("path"),
        }


@dataclass
class TeachSettings:
    collect_dir: Path
    data_dir: Path  # where the dataset's IDX files are (mixed in, and tested on)
    checkpoint_dir: Path  # taught runs go to run-N folders here
    names: list[str]
    rule: SwapRule = field(default_factory=SwapRule)
    learn_all: bool = True  # once the check passes, the model that answers learns from all the drawings


class Lessons:
    """The `lenet train --init` children of one Teach run, one at a time: a check on the learn share, then,
    if it passes, all the drawings."""

    def __init__(self, settings: TeachSettings, stopping: threading.Event):
        self.settings, self.stopping = settings, stopping  # the server's: set once it stops
        self.current: TrainChild | None = None
        self.started: list[TrainChild] = []

    def start(self, info: ModelInfo, folders: list[Path], checked_by: str | None = None) -> None:
        if self.stopping.is_set():
            raise LenetError("the server is stopping")
        # Marked at once: a run folder of a server killed outright is never taken for an accepted model.
        mark = {"status": "learning", **({"checked_by": checked_by} if checked_by else {})}
        self.current = TrainChild(train_arguments(info, folders, self.settings), lambda run: _mark(run, mark))
        self.started.append(self.current)

    def finish(self) -> tuple[Answering, dict[str, Any]]:
        """Wait for the child; the model it made, loaded."""
        result = self.current.wait()
        model, info = load_any_model(result["checkpoint"], "cpu")
        return Answering(model.eval(), info, "taught", test_accuracy=result["test_accuracy"]), result

    def run_dirs(self) -> list[Path]:
        return [child.run_dir for child in self.started if child.run_dir is not None]

    def kill(self) -> None:
        if self.current is not None:
            self.current.kill()


class Teacher:
    """The Teach state shared by the routes: start, progress, figures, undo, stop."""

    def __init__(self, settings: TeachSettings, answering: Answering, use: Callable[[Answering], None]):
        _import_readers()
        self.settings, self.answering, self.use = settings, answering, use
        self.before_runs: list[Answering] = []  # what undo goes back to, the latest last
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"state": "idle"}
        self.stopping = threading.Event()  # set when the server stops
        self.lessons = Lessons(settings, self.stopping)
        self.thread: threading.Thread | None = None
        self.started_at = 0.0

    @property
    def child(self) -> TrainChild | None:
        """The `lenet train` child learning now, if any."""
        return self.lessons.current

    def status(self) -> dict[str, Any]:
        with self.lock:
            document = dict(self.state)
        if document["state"] == "learning" and self.child is not None:
            document["progress"] = self.child.progress()
        counts = collected_counts(self.settings)
        document.update(
            counts=counts,
            needed_per_class=MIN_PER_CLASS,
            missing=missing_per_class(counts),
            can_undo=bool(self.before_runs) and document["state"] not in RUNNING,
        )
        return document

    def start(self) -> dict[str, Any]:
        """Begin a run, or Refused: one is running, too few drawings, no dataset, a model it cannot teach."""
        refuse_untaught(self.answering, collected_counts(self.settings), self.settings.names)
        test = dataset_test_set(self.answering.info.dataset, self.settings.data_dir)
        with self.lock:
            if self.state["state"] in RUNNING:
                raise Refused(409, "a teaching run is under way; wait for it to end")
            self.started_at, self.lessons = time.monotonic(), Lessons(self.settings, self.stopping)
            self.state = {
                "state": "starting",
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "from": self.answering.info.path,
            }
            self.thread = threading.Thread(
                target=self._run, args=(self.answering, test), name="lenet-teach", daemon=True
            )
            self.thread.start()
        return self.status()

    def undo(self) -> dict[str, Any]:
        with self.lock:
            if self.state["state"] in RUNNING:
                raise Refused(409, "a teaching run is under way; wait for it to end")
            if not self.before_runs:
                raise Refused(409, "nothing to undo: no taught model has answered yet")
            taught, self.answering = self.answering, self.before_runs.pop()
            self.answering.source, self.answering.since = "undo", time.strftime("%Y-%m-%dT%H:%M:%S")
            self.use(self.answering)
            self.state = {**self.state, "state": "undone"}
        _mark(Path(taught.info.path).parent, {"status": "undone"})
        return self.status()

    def stop(self) -> None:
        """The server stops: end the child at once and leave no run folder of it behind."""
        self.stopping.set()
        self.lessons.kill()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def _set(self, **values: Any) -> None:
        with self.lock:
            self.state = {**self.state, **values}

    def _run(self, before: Answering, test: Split) -> None:
        workspace = None
        try:
            sets = make_folder(self.settings.checkpoint_dir / "teach-sets", "folder ")
            workspace = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=sets))
            learn, held_dir, unreadable = split_drawings(
                self.settings.collect_dir, workspace, self.settings.names
            )
            held = labelled_split(held_dir, self.settings.names)
            self._set(
                held_out_count=len(held),
                held_out_views=len(HELD_OUT_VIEWS),
                learned_count=sum(1 for _ in learn.glob("*/*")),
                note=_held_out_note(len(held), unreadable),
            )
            self.lessons.start(before.info, [learn])
            self._set(state="learning", phase="check")
            if before.test_accuracy is None:  # measured once per model: the taught ones come measured
                before.test_accuracy = evaluate(before.model, test).accuracy
            figures_before = Figures(measure_held_out(before.model, held), before.test_accuracy)
            self._set(before=figures_before.to_dict())
            checked, result = self.lessons.finish()
            self._set(state="measuring", run=result["run_dir"])
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
        _mark(
            check_dir, {"status": "checked", "before": figures_before.to_dict(), "after": checked.to_dict()}
        )
        self.lessons.start(before.info, folders, checked_by=str(check_dir))
        self._set(state="learning", phase="all")
        taught, result = self.lessons.finish()
        self._set(
            run=result["run_dir"], learned_count=sum(1 for folder in folders for _ in folder.glob("*/*"))
        )
        return taught, Figures(checked.held_out, result["test_accuracy"]), Path(result["run_dir"])

    def _decide(self, taught: Answering, before: Figures, after: Figures, run_dir: Path) -> None:
        refusal = self.settings.rule.refusal(before, after)
        record = {
            "status": "accepted" if refusal is None else "kept out",
            "why": refusal,
            "before": before.to_dict(),
            "after": after.to_dict(),
            "init": taught.info.record.get("init"),
        }
        _mark(run_dir, record)
        with self.lock:
            if refusal is None and not self.stopping.is_set():
                self.before_runs.append(self.answering)
                self.answering = taught
                self.use(taught)  # one assignment: the next forward pass uses the new model whole
            self.state = {
                **self.state,
                "state": "accepted" if refusal is None else "kept out",
                "after": after.to_dict(),
                "why": refusal,
                "seconds": self._seconds(),
            }

    def _fail(self, error: Exception, workspace: Path | None) -> None:
        run_dir = self.child.run_dir if self.child else None
        if self.stopping.is_set():  # the server is stopping: nothing of this run is kept
            for folder in [*self.lessons.run_dirs(), workspace]:
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
            self._set(state="stopped")
            return
        if run_dir is not None and run_dir.is_dir():
            _mark(run_dir, {"status": "failed", "why": str(error)})
        message = (
            str(error) if isinstance(error, LenetError) else f"unexpected {type(error).__name__}: {error}"
        )
        self._set(state="failed", error=message, seconds=self._seconds())

    def _seconds(self) -> float:
        return round(time.monotonic() - self.started_at, 1)


def collected_counts(settings: TeachSettings) -> dict[str, int]:
    """How many drawings of each class are saved in --collect's folder."""
    folder = settings.collect_dir
    return {
        str(label): sum(1 for _ in (folder / str(label)).glob("*.png"))
        if (folder / str(label)).is_dir()
        else 0
        for label in range(len(settings.names))
    }


def refuse_untaught(answering: Answering, counts: dict[str, int], names: list[str]) -> None:
    """Refused when the model answering cannot be taught (an export) or drawings are missing."""
    if answering.info.format != "checkpoint":
        raise Refused(
            422,
            f"teaching starts from a lenet checkpoint; {answering.info.path} is an "
            f"{answering.info.format} export: serve the checkpoint it came from",
        )
    missing = missing_per_class(counts)
    if missing:
        more = ", ".join(f"{count} more of {names[int(name)]}" for name, count in missing.items())
        raise Refused(422, f"teaching needs at least {MIN_PER_CLASS} drawings of each digit; save {more}")


def dataset_test_set(dataset: str, data_dir: Path) -> Split:
    """The dataset's test set from --data-dir, or Refused saying what is needed (nothing is downloaded
    by the server; teaching without the dataset mixed in would make the model forget it)."""
    test = find_split(dataset, data_dir, "test")
    if test is None:
        raise Refused(
            422,
            f"teaching needs {dataset} (mixed into every batch so the model does not forget "
            f"it, and its test set to measure on), and {data_dir} does not hold it; "
            f"start lenet serve with --data-dir DIR, a folder with the four IDX files "
            f"(train-images-idx3-ubyte.gz and the others; lenet train --data-dir DIR downloads "
            f"them)",
        )
    return test


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


def _import_readers() -> None:
    """What a run reads labelled folders and the test set with, imported when the server starts: an import
    holds the interpreter lock for seconds, and during a run that would stall every request."""
    import torchvision.datasets.folder  # noqa: F401
    import torchvision.datasets.mnist  # noqa: F401


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


def _mark(run_dir: Path, record: dict[str, Any]) -> None:
    """teach.json in the run folder, what it says updated: learning, accepted, kept out (and why), failed,
    undone. Only an accepted run's model is ever the default model (`find_latest_checkpoint`)."""
    if run_dir.is_dir():
        path = run_dir / TEACH_RECORD
        earlier = json.loads(path.read_text()) if path.is_file() else {}
        text = json.dumps({**earlier, **record}, indent=2).encode()
        atomic_write(run_dir / "teach.json", lambda handle: handle.write(text), "teach record")
