"""Reading files someone else handed you: only regular files, never blocking, never more than a limit.

A named pipe, a character device such as /dev/zero or a socket can make a plain `open()` or a read to
the end wait forever. Every path lenet reads goes through `open_regular`: it opens without blocking
(O_NONBLOCK, which changes nothing for a regular file), then checks what it opened (`fstat`, after
symlinks were followed) before reading a byte, so nothing can be swapped in between the check and the
read. Sizes are checked against a limit before anything is read into memory.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import BinaryIO

MiB = 1024 * 1024
MAX_IMAGE_BYTES = 64 * MiB  # an image file; a 12 MP phone JPEG is 3-8 MiB
MAX_MODEL_BYTES = 64 * MiB  # a model file (.pt, .onnx, .pt2); LeNet-5's are about 0.25-0.75 MiB
MAX_DATA_BYTES = 4096 * MiB  # an IDX file (MNIST's largest is 45 MiB)

KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class NotReadable(OSError):
    """Not a regular file we may read, or too large; the message says which, without the path."""


def open_regular(path: str | os.PathLike, limit: int) -> BinaryIO:
    """A binary file object for the regular file at `path` (symlinks followed), at most `limit` bytes."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NotReadable("no such file") from None
    except IsADirectoryError:
        raise NotReadable("is a folder") from None
    except OSError as error:  # a socket gives ENXIO; a file without read permission EACCES
        kind = file_kind(path)
        raise NotReadable(
            f"is {kind}, not a regular file" if kind not in (None, "file") else (error.strerror or str(error))
        ) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = KINDS.get(stat.S_IFMT(status.st_mode), "not a regular file")
            raise NotReadable("is a folder" if kind == "a folder" else f"is {kind}, not a regular file")
        if status.st_size > limit:
            raise NotReadable(f"is {status.st_size / MiB:,.1f} MiB, over the {limit // MiB} MiB limit")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The whole regular file at `path`, refused past `limit` bytes (also if it grew after the check)."""
    with open_regular(path, limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotReadable(f"is over the {limit // MiB} MiB limit")
    return data


def read_stdin(limit: int) -> bytes:
    """Standard input to its end, for `-`: refused when it is a terminal (nothing was piped) or too long."""
    stream = sys.stdin.buffer if sys.stdin is not None else None
    if stream is None or stream.isatty():
        raise NotReadable(
            "standard input is a terminal; pipe an image into it, e.g. curl -s URL | lenet predict -"
        )
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise NotReadable(f"standard input is over the {limit // MiB} MiB limit")
    return data


def file_kind(path: str | os.PathLike) -> str | None:
    """None where nothing is, "file" for a regular file (symlinks followed), else what is there
    ("a named pipe (FIFO)"). `stat` never blocks, whatever the path holds."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return "file" if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "not a regular file")
