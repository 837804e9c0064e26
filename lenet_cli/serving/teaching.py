"""Teach on the page: fine-tune the model now answering on the drawings collected so far, in the
background, and let the taught model answer only when it is better.

One run at a time, on a thread of its own (teach_steps.py) that starts `lenet train --init CURRENT
--images LEARN --epochs 1` as a supervised child process (teach_child.py) and waits for it, so serving
never waits: the page keeps answering while the child learns. The collected drawings are split per class
into a share to learn from and a share held out (hard links into `CHECKPOINT_DIR/teach-sets/<time>-
<random>/`; the collected files are never changed), and the model before and the model after are
measured on the held-out drawings and on the dataset's test set. The taught model is a normal run folder
(`CHECKPOINT_DIR/run-N/`, its `init` the model it started from) with `teach.json` beside it saying
whether it was accepted and why; only an accepted one answers, swapped in between two forward passes.
Undo goes back to the model before. Whatever a run meets, its state ends out of RUNNING with a message.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lenet_cli.data.datasets import Split, find_split
from lenet_cli.serving.collect_routes import collected_counts
from lenet_cli.serving.teach_child import TrainChild
from lenet_cli.serving.teach_run import MIN_PER_CLASS, missing_per_class
from lenet_cli.serving.teach_state import RUNNING, Answering, TeachState, mark_run, now_stamp
from lenet_cli.serving.teach_steps import Lessons, TeachRun, TeachSettings

STOP_WAIT_S = 30.0  # the server's stop waits this long at most for a run to end (its child is killed)


class Refused(Exception):
    """A teach request that cannot be served now: answered with `status` and the message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Teacher:
    """The Teach state shared by the routes: start, progress, figures, undo, stop."""

    def __init__(self, settings: TeachSettings, answering: Answering, use: Callable[[Answering], None]):
        _import_readers()
        self.settings, self.answering, self.use = settings, answering, use
        self.before_runs: list[Answering] = []  # what undo goes back to, the latest last
        self.lock = threading.Lock()
        self.state = TeachState()
        self.stopping = threading.Event()  # set when the server stops
        self.lessons = Lessons(settings, self.stopping)
        self.thread: threading.Thread | None = None

    @property
    def child(self) -> TrainChild | None:
        """The `lenet train` child learning now, if any."""
        return self.lessons.current

    def status(self) -> dict[str, Any]:
        self._check_thread()
        with self.lock:
            document = self.state.to_dict()
        if document["state"] == "learning" and self.child is not None:
            document["progress"] = self.child.progress()
        counts = collected_counts(self.settings.collect_dir, len(self.settings.names))
        document.update(
            counts=counts,
            needed_per_class=MIN_PER_CLASS,
            missing=missing_per_class(counts),
            can_undo=bool(self.before_runs) and document["state"] not in RUNNING,
        )
        return document

    def start(self) -> dict[str, Any]:
        """Begin a run, or Refused: one is running, too few drawings, no dataset, a model it cannot teach,
        the server stopping."""
        refuse_untaught(
            self.answering,
            collected_counts(self.settings.collect_dir, len(self.settings.names)),
            self.settings.names,
        )
        test = dataset_test_set(self.answering.info.dataset, self.settings.data_dir)
        self._check_thread()
        with self.lock:
            if self.stopping.is_set():
                raise Refused(503, "the server is stopping")
            if self.state.state in RUNNING:
                raise Refused(409, "a teaching run is under way; wait for it to end")
            self.lessons = Lessons(self.settings, self.stopping)
            self.state = TeachState("starting", started=now_stamp(), from_model=self.answering.info.path)
            steps = TeachRun(self.settings, self.lessons, self.report, self.accept)
            self.thread = threading.Thread(
                target=steps.run, args=(self.answering, test), name="lenet-teach", daemon=True
            )
            self.thread.start()
        return self.status()

    def undo(self) -> dict[str, Any]:
        with self.lock:
            if self.state.state in RUNNING:
                raise Refused(409, "a teaching run is under way; wait for it to end")
            if not self.before_runs:
                raise Refused(409, "nothing to undo: no taught model has answered yet")
            taught, self.answering = self.answering, self.before_runs.pop()
            self.answering.source, self.answering.since = "undo", now_stamp()
            self.use(self.answering)
            self.state = dataclasses.replace(self.state, state="undone")
        mark_run(Path(taught.info.path).parent, "undone")
        return self.status()

    def stop(self) -> None:
        """The server stops: end the child (its whole group) at once and leave no run folder of it."""
        self.stopping.set()
        self.lessons.kill()
        if self.thread is not None:
            self.thread.join(timeout=STOP_WAIT_S)
        self._check_thread()

    def report(self, **changes: Any) -> None:
        """A run's step, for the page."""
        with self.lock:
            self.state = dataclasses.replace(self.state, **changes)

    def accept(self, taught: Answering) -> bool:
        """Let the taught model answer, unless the server is stopping (then False, and nothing changes)."""
        with self.lock:
            if self.stopping.is_set():
                return False
            self.before_runs.append(self.answering)
            self.answering = taught
            self.use(taught)  # one assignment: the next forward pass uses the new model whole
            return True

    def _check_thread(self) -> None:
        """A run whose thread ended without saying how (it cannot, but if it did) is failed, not running
        forever: the page can start another."""
        with self.lock:
            ended = self.thread is None or not self.thread.is_alive()
            if ended and self.state.state in RUNNING:
                why = "the teaching run ended unexpectedly" if not self.stopping.is_set() else None
                state = "failed" if why else "stopped"
                self.state = dataclasses.replace(self.state, state=state, error=why)


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


def _import_readers() -> None:
    """What a run reads labelled folders and the test set with, imported when the server starts: an import
    holds the interpreter lock for seconds, and during a run that would stall every request."""
    import torchvision.datasets.folder  # noqa: F401
    import torchvision.datasets.mnist  # noqa: F401
