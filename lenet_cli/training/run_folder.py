"""The run folder: `CHECKPOINT_DIR/run-N`, made before the first step and never reused by a new run.

A resumed `last.pt` continues in its own folder. Stale temporaries of dead processes are cleared when a
folder is used, and a run that fails before writing anything leaves no empty folder behind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lenet_cli.core.distributed import Cluster
from lenet_cli.core.errors import CheckpointError, LenetError
from lenet_cli.core.writing import make_folder, remove_stale_temporaries

RUN_DIR_PATTERN = re.compile(r"run-(\d+)$")


@contextmanager
def open_run_folder(
    checkpoint_dir: str | os.PathLike, cluster: Cluster, resume_from: str | os.PathLike | None
) -> Iterator[Path]:
    """The folder this run writes into, the same on every rank; removed on failure if left empty."""
    run_dir, created = _shared_run_dir(checkpoint_dir, cluster, resume_from)
    if cluster.is_main:
        remove_stale_temporaries(run_dir)
    try:
        yield run_dir
    except BaseException:
        if created and cluster.is_main and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def create_run_dir(checkpoint_dir: str | os.PathLike) -> Path:
    """Make a fresh `checkpoint_dir/run-N` (N one past the highest), so no earlier run is overwritten."""
    root = Path(checkpoint_dir)
    make_folder(root, "checkpoint folder ", CheckpointError)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} is not a folder")
    if not os.access(root, os.W_OK | os.X_OK):
        raise CheckpointError(f"checkpoint folder {root} is not writable")
    taken = [int(m.group(1)) for child in root.iterdir() if (m := RUN_DIR_PATTERN.match(child.name))]
    number = max(taken, default=0) + 1
    while True:
        run_dir = root / f"run-{number}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:  # another run took it first
            number += 1
        except OSError as error:
            raise CheckpointError(f"cannot create {run_dir}: {error.strerror or error}") from None


def _shared_run_dir(
    checkpoint_dir: str | os.PathLike, cluster: Cluster, resume_from: str | os.PathLike | None
) -> tuple[Path, bool]:
    """Rank 0 makes (and checks) the run folder; every rank learns it (and whether it is new), or the error."""
    outcome: tuple[str, bool] | LenetError
    if cluster.is_main:
        try:
            if resume_from is not None and Path(resume_from).name == "last.pt":
                outcome = (str(Path(resume_from).parent), False)  # a resumed last.pt continues in its folder
            else:
                outcome = (str(create_run_dir(checkpoint_dir)), True)
        except LenetError as error:
            outcome = error
    else:
        outcome = ("", False)
    outcome = cluster.share(outcome)
    if isinstance(outcome, LenetError):
        raise outcome
    return Path(outcome[0]), outcome[1]
