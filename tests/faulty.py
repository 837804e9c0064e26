"""Faulty stand-ins for the server's preprocessing, injected where a worker process or thread receives its
function (`PreprocessingPool(preprocess=...)`): module-level so a worker process can unpickle them."""

import os
import signal

from lenet_cli.serving.worker_process import input_bytes_or_error

MARKER = b"FAULT-HERE"


def die_on_marker(data: bytes | bytearray, invert: str) -> bytes | str:
    """Read as the server does, but die as if killed given an image that holds the marker."""
    if MARKER in data:
        os.kill(os.getpid(), signal.SIGKILL)
    return input_bytes_or_error(data, invert)


def raise_on_marker(data: bytes | bytearray, invert: str) -> bytes | str:
    """Read as the server does, but raise an unexpected error given an image that holds the marker."""
    if MARKER in data:
        raise ValueError("a fault injected by the test")
    return input_bytes_or_error(data, invert)
