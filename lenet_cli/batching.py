"""Dynamic batching for a model server: images that arrive close together share one forward pass.

Requests wait at most `window_s` for company, up to `max_batch` images, and only while other accepted
requests are still being preprocessed (so a lone request never waits); the forward pass runs on a
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
import threading
import time
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
        self.waiting: list[tuple[list[bytes], int, asyncio.Future]] = []  # (digits, top_k, answer)
        self.waiting_images = 0
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

    async def rank(self, digits: list[bytes], top_k: int) -> list[tuple[list[int], list[float]]]:
        """For each 28x28 network input (raw uint8 bytes): its `top_k` labels, most probable first, and
        their probabilities; computed with whatever else arrives within the window. All tensor work
        happens on the model's thread, in one go for the whole batch."""
        loop = asyncio.get_running_loop()
        if self.window_s <= 0:
            return (await loop.run_in_executor(self.runner, self.forward, [(digits, top_k)]))[0]
        future = loop.create_future()
        self.waiting.append((digits, top_k, future))
        self.waiting_images += len(digits)
        # Waiting only pays while other accepted requests are still being preprocessed: when every image
        # accepted is already here (a single client, say), nobody is coming, so go at once.
        if self.waiting_images >= self.max_batch or self.waiting_images >= self.pending:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        taken, self.waiting, self.waiting_images = self.waiting, [], 0
        if not taken:
            return
        requests = [(digits, top_k) for digits, top_k, _ in taken]
        work = asyncio.get_running_loop().run_in_executor(self.runner, self.forward, requests)
        work.add_done_callback(lambda done: _hand_out(done, [future for _, _, future in taken]))

    def forward(self, requests: list[tuple[list[bytes], int]]) -> list[list[tuple[list[int], list[float]]]]:
        """One forward pass for every image of `requests`; each request's ranked rows."""
        data = b"".join(digit for digits, _ in requests for digit in digits)
        images_u8 = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, 28, 28)
        self.batch_sizes[len(images_u8)] += 1
        probabilities = predict_logits(self.model, images_u8).softmax(dim=1).cpu()
        k = min(max(top_k for _, top_k in requests), probabilities.shape[1])
        top_probabilities, top_labels = (values.tolist() for values in probabilities.topk(k, dim=1))
        answers, start = [], 0
        for digits, top_k in requests:
            rows = range(start, start + len(digits))
            answers.append([(top_labels[row][:top_k], top_probabilities[row][:top_k]) for row in rows])
            start += len(digits)
        return answers


def _hand_out(done: asyncio.Future, futures: list[asyncio.Future]) -> None:
    """Give each waiting request its answer (or the batch's exception)."""
    error = done.exception()
    for index, future in enumerate(futures):
        if future.done():  # the request went away
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result()[index])


def digit_or_error(data: bytes, invert: str) -> bytes | str:
    """An uploaded image file's bytes -> its 28x28 network input as raw uint8 bytes, or why it cannot be
    read. Runs in the preprocessing processes, so it returns plain values, cheap to send back."""
    try:
        return load_digit(data, invert=invert).numpy().tobytes()
    except ImageError as error:
        return str(error)


def _start_worker() -> None:
    torch.set_num_threads(1)  # one process per core: each uses one
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops them
    parent = os.getppid()

    def leave_with_parent() -> None:  # a server killed outright (kill -9) leaves no worker behind
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=leave_with_parent, daemon=True).start()


def _ready() -> None:
    """Nothing: run once on each worker so the pool has started before the server says it is ready."""


def preprocessing_pool(workers: int | None = None) -> Executor:
    """Processes for decoding and preprocessing, one per core by default (started now, not at the first
    request); `workers=0` preprocesses on threads of this process instead (for tests and comparison)."""
    if workers == 0:
        return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="lenet-preprocess")
    count = workers or os.cpu_count() or 1
    # spawn, not fork: a forked copy of a process whose torch has started its threads can deadlock.
    pool = ProcessPoolExecutor(
        count, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
    )
    for ready in [pool.submit(_ready) for _ in range(count)]:
        ready.result()  # each worker has imported torch and lenet before the server says it is ready
    return pool
