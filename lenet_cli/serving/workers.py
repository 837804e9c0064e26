"""Processes that turn uploaded image files into network inputs for `lenet serve`, one per core.

Each process is fed over a pipe that the server's event loop reads and writes itself, with no executor
thread between: at hundreds of small images a second, a ProcessPoolExecutor's pickled work items, queue
thread and cross-thread wake-ups cost the server's own process, the one that cannot use a second core,
about as much as the HTTP request does. Here a job is one framed write and one framed read on the loop
(`python bench/handover_cost.py` measures both; figures in docs/performance.md).

A message is multiprocessing's framing (a 4-byte big-endian length, then the bytes), so the worker side
is a plain `Connection`. To a worker: one byte for `invert` (its index in INVERT_CHOICES), then the image
file. Back, in the order sent: b"\\0" and the 28x28 uint8 input, or b"\\1" and why the file cannot be read.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import multiprocessing
import os
import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import torch

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import ImageError, LenetError
from lenet_cli.images.preprocess import load_digit

READY = b"ready"
START_TIMEOUT_S = 120  # importing torch in a fresh process takes seconds on a slow machine
# Reads sent to one worker at a time: enough that it still has work while the event loop is busy for a
# few milliseconds (a forward pass, a burst of requests), few enough that a worker the system pauses
# holds up only these (2 cost a fifth of the throughput at 64 clients; 8 as much as no limit).
IN_FLIGHT = 8
LOAD_PERIOD_S = 0.1  # how often the server's own load is read to choose how many workers take reads


class WorkerStopped(LenetError):
    """A preprocessing process exited with work outstanding."""


def digit_or_error(data: bytes, invert: str) -> bytes | str:
    """An uploaded image file's bytes -> its 28x28 network input as raw uint8 bytes, or why it cannot be
    read (plain values, cheap to send between processes)."""
    try:
        return load_digit(data, invert=invert).numpy().tobytes()
    except ImageError as error:
        return str(error)


class PreprocessingPool:
    """`await pool.read(data, invert)` -> network input bytes or an error message, in the first worker
    process free, or on a thread of this process when made with `workers=0` (tests, and comparison).
    Used from one event loop at a time; a new loop reconnects."""

    def __init__(self, workers: int | None = None):
        self.threads = ThreadPoolExecutor(os.cpu_count() or 1, "lenet-preprocess") if workers == 0 else None
        self.processes: list[multiprocessing.Process] = []
        self.connections: list[Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[_Dispatcher] | None = None
        context = multiprocessing.get_context("spawn")  # a fork of a process running torch can deadlock
        for _ in range(0 if workers == 0 else workers or os.cpu_count() or 1):
            ours, theirs = context.Pipe()
            process = context.Process(target=_work, args=(theirs,), name="lenet-preprocess", daemon=True)
            process.start()
            theirs.close()
            self.processes.append(process)
            self.connections.append(ours)
        for connection in self.connections:  # each has imported torch and lenet before the server is ready
            if not connection.poll(START_TIMEOUT_S) or connection.recv_bytes() != READY:
                self.close()
                raise LenetError("the preprocessing processes did not start")

    async def read(self, data: bytes, invert: str) -> bytes | str:
        loop = asyncio.get_running_loop()
        if self.threads is not None:
            return await loop.run_in_executor(self.threads, digit_or_error, data, invert)
        if self._loop is not loop:
            self._loop, self._dispatcher = loop, loop.create_task(self._connect())
        answer = loop.create_future()
        (await self._dispatcher).submit(data, invert, answer)
        return await answer

    def close(self) -> None:
        """Stop the workers: each sees its pipe close and exits; any that does not is terminated."""
        if self.threads is not None:
            self.threads.shutdown(wait=True, cancel_futures=True)
        for connection in self.connections:
            connection.close()
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()

    async def _connect(self) -> _Dispatcher:
        channels = []
        for connection in self.connections:
            end = socket.socket(fileno=os.dup(connection.fileno()))  # the Connection keeps its own descriptor
            reader, writer = await asyncio.open_connection(sock=end)
            channels.append(_Channel(reader, writer))
        return _Dispatcher(channels)


@dataclass
class _Channel:
    """The server's end of one worker's pipe, on one event loop, and the reads sent on it, in order."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    answers: collections.deque[asyncio.Future] = field(default_factory=collections.deque)


def free_cores(cores: int, busy: float) -> int:
    """How many workers to give reads: the cores the server's own process left free (`busy` cores' worth
    of CPU over the last period), at least one, since three busy processes on two cores slow each."""
    return max(1, round(cores - busy))


class _Dispatcher:
    """One queue of reads for every worker, each given at most IN_FLIGHT at a time, so that the reads go
    to whichever worker is free rather than to one queue per worker decided on arrival.

    Only as many workers take reads as there are cores the server's own process leaves free, measured as
    it goes: at hundreds of small images a second that process keeps most of a core busy, and a worker
    per core then makes three busy processes on two cores, each slowed (and the p99 with them); large
    images leave it nearly idle, and every worker takes them (docs/performance.md#serving)."""

    def __init__(self, channels: list[_Channel]):
        self.channels = channels
        self.waiting: collections.deque[tuple[bytes, str, asyncio.Future]] = collections.deque()
        self.in_use = len(channels)  # workers given reads
        self.measured_at, self.cpu_at = time.monotonic(), time.process_time()
        for channel in channels:
            asyncio.get_running_loop().create_task(self._hand_out_answers(channel))

    def submit(self, data: bytes, invert: str, answer: asyncio.Future) -> None:
        if not self.channels:
            raise WorkerStopped("every preprocessing process has stopped; restart the server")
        self.waiting.append((data, invert, answer))
        self._send()

    def _send(self) -> None:
        """Hand waiting reads out, each to the worker with the fewest (so 8 clients use both cores)."""
        while self.waiting and self.channels:
            channel = min(self.channels[: self._workers_to_use()], key=lambda each: len(each.answers))
            if len(channel.answers) >= IN_FLIGHT:
                return
            data, invert, answer = self.waiting.popleft()
            if answer.done():  # the request went away while it waited
                continue
            channel.answers.append(answer)
            header = struct.pack("!iB", len(data) + 1, INVERT_CHOICES.index(invert))
            channel.writer.writelines([header, data])  # buffered by the transport: never blocks

    def _workers_to_use(self) -> int:
        """The cores this process has left free over the last LOAD_PERIOD_S, as a number of workers."""
        now = time.monotonic()
        if now - self.measured_at >= LOAD_PERIOD_S:
            cpu = time.process_time()
            busy = (cpu - self.cpu_at) / (now - self.measured_at)  # cores this process kept busy
            self.in_use = free_cores(os.cpu_count() or 1, busy)
            self.measured_at, self.cpu_at = now, cpu
        return max(1, min(self.in_use, len(self.channels)))

    async def _hand_out_answers(self, channel: _Channel) -> None:
        """Resolve the channel's reads in order as its worker answers; if the worker exits, fail them."""
        try:
            while True:
                (size,) = struct.unpack("!i", await channel.reader.readexactly(4))
                message = await channel.reader.readexactly(size)
                answer = channel.answers.popleft()
                self._send()
                if not answer.done():  # not a request that went away
                    answer.set_result(message[1:] if message[0] == 0 else message[1:].decode())
        except (asyncio.IncompleteReadError, ConnectionError):
            self.channels.remove(channel)
            stranded = list(channel.answers)
            if not self.channels:
                stranded += [answer for _, _, answer in self.waiting]
            stopped = WorkerStopped("a preprocessing process stopped unexpectedly")
            for answer in stranded:
                if not answer.done():
                    answer.set_exception(stopped)


def _work(connection: Connection) -> None:
    """A worker: answer each (invert, image file) message in order until the server closes the pipe."""
    torch.set_num_threads(1)  # one process per core: each uses one
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops us
    _leave_with(os.getppid())
    gc.freeze()  # what the imports made lives as long as the process: no full collections over it
    connection.send_bytes(READY)
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return
        answer = digit_or_error(message[1:], INVERT_CHOICES[message[0]])
        connection.send_bytes(b"\0" + answer if isinstance(answer, bytes) else b"\1" + answer.encode())


def _leave_with(parent: int) -> None:
    """Exit when the server does, even killed outright (kill -9), so no worker is left behind."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
