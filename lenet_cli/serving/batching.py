"""Dynamic batching for a model server: images that arrive close together share one forward pass.

Requests wait at most `window_s` for company, up to `max_batch` images, and only while other accepted
requests are still being preprocessed (so a lone request never waits). The forward pass runs on the
event loop's own thread: LeNet-5 takes a few milliseconds for a batch, and a thread of its own only
waited for the interpreter lock behind the loop (its answers came later, and throughput fell). A window
of 0 runs each request's images alone (batching off, for comparison). How much work may wait is
bounded: past `max_pending` images the next request is refused at once (`Overloaded`), never queued.
"""

from __future__ import annotations

import asyncio
import collections

import torch
from torch import nn

from lenet_cli.data.datasets import as_input
from lenet_cli.inference.forward import model_device


class Overloaded(Exception):
    """More work is waiting than the server accepts; the client should retry shortly."""


class DynamicBatcher:
    """Collects 28x28 uint8 images from concurrent requests into batches for one model."""

    def __init__(
        self, model: nn.Module, window_s: float = 0.010, max_batch: int = 64, max_pending: int = 512
    ):
        self.model, self.device = model.eval(), model_device(model)
        self.window_s, self.max_batch, self.max_pending = window_s, max_batch, max_pending
        self.waiting: list[tuple[list[bytes], int, asyncio.Future]] = []  # (digits, top_k, answer)
        self.waiting_images = 0
        self.pending = 0  # images accepted and not yet answered
        self.batch_sizes: collections.Counter[int] = collections.Counter()  # images per forward pass
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
        their probabilities; computed with whatever else arrives within the window, in one forward pass."""
        loop = asyncio.get_running_loop()
        if self.window_s <= 0:
            return self.forward([(digits, top_k)])[0]
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
        futures = [future for _, _, future in taken]
        try:
            answers = self.forward([(digits, top_k) for digits, top_k, _ in taken])
        except Exception as error:  # every request of the batch hears of it
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        for future, answer in zip(futures, answers, strict=True):
            if not future.done():  # else the request went away
                future.set_result(answer)

    def forward(self, requests: list[tuple[list[bytes], int]]) -> list[list[tuple[list[int], list[float]]]]:
        """One forward pass for every image of `requests`; each request's ranked rows."""
        data = b"".join(digit for digits, _ in requests for digit in digits)
        images_u8 = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, 28, 28)
        self.batch_sizes[len(images_u8)] += 1
        with torch.inference_mode():  # the model itself: predict_logits' set-up is per call
            probabilities = self.model(as_input(images_u8.to(self.device))).softmax(dim=1).cpu()
        k = min(max(top_k for _, top_k in requests), probabilities.shape[1])
        top_probabilities, top_labels = (values.tolist() for values in probabilities.topk(k, dim=1))
        answers, start = [], 0
        for digits, top_k in requests:
            rows = range(start, start + len(digits))
            answers.append([(top_labels[row][:top_k], top_probabilities[row][:top_k]) for row in rows])
            start += len(digits)
        return answers
