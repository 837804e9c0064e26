"""Dynamic batching for a model server: images that arrive close together share one forward pass.

Requests wait at most `window_s` for company, up to `max_batch` images; the forward pass runs on a
thread of its own, so the event loop keeps accepting requests while the model works. A window of 0 runs
each request's images alone (batching off, for comparison). How much work may wait is bounded: past
`max_pending` images the next request is refused at once (`Overloaded`), never queued in memory.
Preprocessing (decode and MNIST form) runs in a pool of processes, one per core, so that large images
use every core and small ones do not queue behind the interpreter lock.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import torch
from torch import nn

from lenet_cli.errors import ImageError
from lenet_cli.evaluate import predict_logits
from lenet_cli.preprocess import load_digit


class Overloaded(Exception):
    """More work is waiting than the server accepts; the client should retry shortly."""


class DynamicBatcher:
    """Collects 28x28 uint8 images from concurrent requests into batches for one model."""

    def __init__(
        self, model: nn.Module, window_s: float = 0.002, max_batch: int = 64, max_pending: int = 512
    ):
        self.model, self.window_s, self.max_batch, self.max_pending = model, window_s, max_batch, max_pending
        self.waiting: list[tuple[torch.Tensor, asyncio.Future]] = []
        self.pending = 0  # images accepted and not yet answered
        self.batch_sizes: collections.Counter[int] = collections.Counter()  # images per forward pass
        self.runner = ThreadPoolExecutor(1, thread_name_prefix="lenet-model")  # one forward pass at a time
        self.timer: asyncio.TimerHandle | None = None

    def reserve(self, count: int) -> None:
        """Take room for `count` images before the (expensive) preprocessing starts, or refuse."""
        if self.pending + count > self.max_pending:
            raise Overloaded(f"{self.pending} images are waiting (at most {self.max_pending})")
        self.pending += count

    def release(self, count: int) -> None:
        self.pending -= count

    async def probabilities(self, images_u8: torch.Tensor) -> torch.Tensor:
        """Class probabilities (k, classes) for `images_u8` (k, 28, 28), computed with whatever else
        arrives within the window."""
        loop = asyncio.get_running_loop()
        if self.window_s <= 0:
            return await loop.run_in_executor(self.runner, self._forward, [images_u8])
        future = loop.create_future()
        self.waiting.append((images_u8, future))
        if sum(len(images) for images, _ in self.waiting) >= self.max_batch:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        taken, self.waiting = self.waiting, []
        if not taken:
            return
        work = asyncio.get_running_loop().run_in_executor(self.runner, self._forward, [i for i, _ in taken])
        work.add_done_callback(lambda done: _hand_out(done, taken))

    def _forward(self, batches: list[torch.Tensor]) -> torch.Tensor:
        images_u8 = torch.cat(batches)
        self.batch_sizes[len(images_u8)] += 1
        return predict_logits(self.model, images_u8).softmax(dim=1).cpu()

    def close(self) -> None:
        self.runner.shutdown(wait=True)


def _hand_out(done: asyncio.Future, taken: list[tuple[torch.Tensor, asyncio.Future]]) -> None:
    """Give each waiting request its rows of the batch's result (or the batch's exception)."""
    error = done.exception()
    start = 0
    for images, future in taken:
        if future.done():  # the request went away
            start += len(images)
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result()[start : start + len(images)])
        start += len(images)


def digit_or_error(data: bytes, invert: str) -> bytes | str:
    """An uploaded image file's bytes -> its 28x28 network input as raw uint8 bytes, or why it cannot be
    read. Runs in the preprocessing processes, so it returns plain values, cheap to send back."""
    try:
        return load_digit(data, invert=invert).numpy().tobytes()
    except ImageError as error:
        return str(error)


def _one_thread() -> None:
    torch.set_num_threads(1)  # one process per core: each uses one
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops them


def preprocessing_pool(workers: int | None = None) -> Executor:
    """Processes for decoding and preprocessing, one per core by default (started now, not at the first
    request); `workers=0` preprocesses on threads of this process instead (for tests and comparison)."""
    if workers == 0:
        return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="lenet-preprocess")
    count = workers or os.cpu_count() or 1
    # spawn, not fork: a forked copy of a process whose torch has started its threads can deadlock.
    pool = ProcessPoolExecutor(
        count, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread
    )
    for ready in [pool.submit(_one_thread) for _ in range(count)]:
        ready.result()  # each worker has imported torch and lenet before the server says it is ready
    return pool
