"""Writing files so that a crash, a `kill -9` or a power cut never leaves a half-written one.

Every file lenet writes (checkpoints, metrics.csv, pictures, exports) goes through `atomic_write`:
a temporary file in the same folder, flushed to disk, renamed over the target, then the folder
itself flushed so that the rename survives a power cut too. A process killed mid-write leaves its
temporary file behind; `remove_stale_temporaries` clears those of processes that no longer run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lenet_cli.core.errors import LenetError

TEMPORARY_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)(\.[a-z0-9]+)?$")


def temporary_path(path: Path, keep_suffix: bool = False) -> Path:
    """`.NAME.tmp-PID` beside `path`; with `keep_suffix`, `.NAME.tmp-PID.SUFFIX` for writers that insist
    on a file name's suffix (torch.export's .pt2)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}" + (path.suffix if keep_suffix else ""))


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None],
    what: str = "file",
    error: type[LenetError] = LenetError,
) -> Path:
    """Call `write(handle)` on a temporary file, then rename it to `path`: the old file or the new one,
    never a mixture. Raises `error`("cannot write <what> <path>: ...") on OS errors."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except OSError as os_error:
        temporary.unlink(missing_ok=True)
        raise error(f"cannot write {what} {path}: {os_error.strerror or os_error}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def make_folder(folder: Path, label: str = "", error: type[LenetError] = LenetError) -> Path:
    """Create `folder` and its parents if need be; `error`("cannot create <label><folder>: ...") if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as os_error:
        raise error(f"cannot create {label}{folder}: {os_error.strerror or os_error}") from None
    return folder


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(descriptor)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete `.NAME.tmp-PID` files whose writing process no longer runs; return what was removed.

    Call it before this process writes into `folder`: a file named with this process's own PID is
    then a leftover of an earlier process that had the same PID."""
    removed = []
    if not folder.is_dir():
        return removed
    for candidate in folder.iterdir():
        match = TEMPORARY_PATTERN.match(candidate.name)
        if not (match and candidate.is_file()):
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or not _process_alive(pid):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
