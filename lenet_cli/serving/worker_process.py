"""What runs in a preprocessing process of `lenet serve` (workers.py starts and feeds them): read each
upload sent over the pipe into its network input, answer, and exit with the server.

Replies, in the order asked: b"\\0" and the 28x28 uint8 input, b"\\1" and why the file cannot be read, or
b"\\2", an unexpected error's type name, a NUL, and its message (the server answers that request 500
naming it; the process goes on).
"""

from __future__ import annotations

import gc
import io
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import torch

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import ImageError
from lenet_cli.images.preprocess import load_digit

READY = b"ready"
Preprocess = Callable[[bytes | bytearray, str], bytes | str]


class ReadFailed(Exception):
    """An unexpected error while reading an upload in a worker process, raised again in the server (the
    request is answered 500 with `kind` and the message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def input_bytes_or_error(data: bytes | bytearray, invert: str) -> bytes | str:
    """An uploaded image file's bytes -> its 28x28 network input as raw uint8 bytes, or why it cannot be
    read (plain values, cheap to send between processes)."""
    try:
        return load_digit(data, invert=invert).numpy().tobytes()
    except ImageError as error:
        return str(error)


def work(connection: Connection, preprocess: Preprocess = input_bytes_or_error) -> None:
    """A worker: answer each (invert, image file) message in order until the server closes the pipe."""
    torch.set_num_threads(1)  # one process per core: each uses one
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops us
    _leave_with(os.getppid())
    preprocess(warm_up_image(), "auto")  # first calls (Pillow's plugins, numpy) before any request's
    gc.freeze()  # what the imports made lives as long as the process: no full collections over it
    connection.send_bytes(READY)
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            answer = preprocess(message[1:], INVERT_CHOICES[message[0]])
            reply = b"\0" + answer if isinstance(answer, bytes) else b"\1" + answer.encode()
        except Exception as error:  # noqa: BLE001 - told to the request; the worker goes on
            reply = b"\2" + f"{type(error).__name__}\0{error}".encode(errors="replace")
        try:
            connection.send_bytes(reply)
        except OSError:  # the server closed the pipe (it is stopping): nobody waits for the answer
            return


def warm_up_image() -> bytes:
    """A small PNG of a stroke: reading it once readies a new worker's decoders."""
    from PIL import Image

    image = Image.new("L", (64, 64), 0)
    image.paste(255, (28, 8, 36, 56))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _leave_with(parent: int) -> None:
    """Exit when the server does, even killed outright (kill -9), so no worker is left behind: the
    forkserver, this process's parent, exits when the server does."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
