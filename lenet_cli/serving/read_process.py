"""What runs in `lenet serve`'s reading process: numbers read for `POST /read`, away from the server's
own process, so a read that takes seconds of CPU never holds the interpreter lock a `/predict` needs.

The process is one of a ProcessPoolExecutor's, forked from the preprocessing processes' forkserver (torch
and lenet imported once); it runs at a lower priority than the server, so digits win the cores. It loads
the model it is told (by path: the shipped reader or the model answering, which Teach may change) and
keeps the last one.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import torch

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.inference.numbers import Reading, read_named

READ_NICENESS = 5  # the reading process yields the cores to the server and its preprocessing processes
_models: dict[str, Any] = {}  # the model last read with, by path


def start_reading() -> None:
    """The reading process's start: one thread for torch, a lower priority, Ctrl-C left to the server."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(READ_NICENESS)
    except (OSError, AttributeError):  # not permitted, or not a Unix
        pass


def read_numbers(
    model_path: str, uploads: list[tuple[str, bytes | bytearray]], invert: str, bounds: tuple[int, int] | None
) -> list[Reading]:
    """`read_named` with the model at `model_path`; only what the answer needs is sent back."""
    if model_path not in _models:
        model, _ = load_any_model(model_path, "cpu")
        _models.clear()
        _models[model_path] = model.eval()
    readings = read_named(_models[model_path], uploads, invert, bounds)
    for reading in readings:
        reading.segmentation, reading.field = None, None
    return readings
