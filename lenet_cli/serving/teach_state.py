"""What Teach keeps and shows, as types with one way into JSON each: the model answering (`Answering`),
the state the page polls (`TeachState`, GET /teach) and the record beside a taught run's model
(`TeachRecord`, teach.json)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import nn

from lenet_cli.core.reading import read_regular
from lenet_cli.core.writing import atomic_write
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.formats.shipped import TEACH_RECORD

RUNNING = ("starting", "learning", "measuring")
DECIDED = ("accepted", "kept out")
MAX_RECORD_BYTES = 1024 * 1024  # a teach.json is a few hundred bytes


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Answering:
    """The model that answers requests, and where it came from."""

    model: nn.Module
    info: ModelInfo
    source: str  # "started with", "taught", "undo"
    since: str = field(default_factory=now_stamp)
    test_accuracy: float | None = None  # on the test set in --data-dir, once measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.info.path,
            "source": self.source,
            "since": self.since,
            "init": (self.info.record.get("init") or {}).get("path"),
        }


@dataclass
class TeachState:
    """One Teach run as the page sees it: idle, running (RUNNING), or how the last run ended (accepted,
    kept out, failed, stopped, undone). A field is in the JSON once the run has reached it."""

    state: str = "idle"
    started: str | None = None
    from_model: str | None = None  # "from": the model the run started from
    held_out_count: int | None = None  # drawings held out to measure on
    held_out_views: int | None = None  # views of each held-out drawing measured
    learned_count: int | None = None  # drawings learned from
    note: str | None = None  # said with the counts (few held out, some unreadable), or None
    phase: str | None = None  # "check" (the learn share) or "all" (every drawing)
    before: dict[str, float] | None = None  # Figures of the model before
    run: str | None = None  # the run folder of the child that learned last
    after: dict[str, float] | None = None  # Figures of the taught model
    why: str | None = None  # why it was kept out, or None when accepted
    seconds: float | None = None  # the run took, once it ended
    error: str | None = None  # why it failed

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for each in fields(self):
            value = getattr(self, each.name)
            if value is not None or self._said(each.name):
                document["from" if each.name == "from_model" else each.name] = value
        return document

    def _said(self, name: str) -> bool:
        """A field the page reads even when it is None, once its step is done."""
        return (name == "note" and self.held_out_count is not None) or (
            name == "why" and self.after is not None
        )


@dataclass
class TeachRecord:
    """teach.json in a taught run's folder: learning, checked, accepted, kept out (and why), failed,
    undone. Only an accepted run's model is ever the default model (`find_latest_checkpoint`)."""

    status: str
    checked_by: str | None = None  # the check run whose held-out figure this run carries
    why: str | None = None
    before: dict[str, float] | None = None
    after: dict[str, float] | None = None
    init: dict[str, Any] | None = None  # the model it started from, as the checkpoint records it

    def to_dict(self) -> dict[str, Any]:
        decided = self.status in DECIDED  # its why (None: accepted) and init are said in any case
        return {
            name: value
            for name, value in asdict(self).items()
            if value is not None or (decided and name in ("why", "init"))
        }


def mark_run(run_dir: Path, status: str, **values: Any) -> None:
    """Write the run's teach.json: what it said before, updated with `status` and `values`."""
    if not run_dir.is_dir():
        return
    path = run_dir / TEACH_RECORD
    try:
        earlier = json.loads(read_regular(path, MAX_RECORD_BYTES)) if path.is_file() else {}
    except (OSError, ValueError):  # unreadable: what this run says now is all it says
        earlier = {}
    earlier = earlier if isinstance(earlier, dict) else {}
    kept = {each.name: earlier[each.name] for each in fields(TeachRecord) if each.name in earlier}
    record = TeachRecord(**{**kept, "status": status, **values})
    text = json.dumps(record.to_dict(), indent=2).encode()
    atomic_write(path, lambda handle: handle.write(text), "teach record")
