"""Ctrl-C and SIGTERM during training: the first asks for a clean stop, a second stops at once."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequest:
    """Set by a signal (or by code); the training loop checks it after every step."""

    def __init__(self) -> None:
        self.signal_number: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def request(self, signal_number: int = signal.SIGINT) -> None:
        self.signal_number = signal_number


@contextmanager
def stop_on_signals(stop: StopRequest, grace_s: float = 0.0) -> Iterator[StopRequest]:
    """While inside, SIGINT/SIGTERM set `stop`; a second signal raises KeyboardInterrupt at once.

    A second signal within `grace_s` of the first counts as the same one: under torchrun, Ctrl-C
    reaches each worker twice (from the terminal, then forwarded by torchrun).
    Checkpoint writes are atomic, so stopping at once never leaves a corrupt file behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    first_at: list[float] = []

    def handle(signal_number: int, frame: object) -> None:
        if stop.requested:
            if time.monotonic() - first_at[0] < grace_s:
                return
            raise KeyboardInterrupt
        first_at.append(time.monotonic())
        stop.request(signal_number)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
