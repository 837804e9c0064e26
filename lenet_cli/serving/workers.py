"""Processes that turn uploaded image files into network inputs for `lenet serve`, one per core, kept
alive by the server: one that exits or is killed is replaced at once, and the reads it held are retried.

Each process is fed over a pipe that the server's event loop reads and writes itself, with no executor
thread between: at hundreds of small images a second, a ProcessPoolExecutor's pickled work items, queue
thread and cross-thread wake-ups are a real share of the work of the server's own process, the one that
cannot use a second core. Here a job is one framed write and one framed read on the loop
(`python bench/serving/handover_cost.py` measures both; figures in docs/performance.md).

A message is multiprocessing's framing (a 4-byte big-endian length, then the bytes), so the worker side
is a plain `Connection`. To a worker: one byte for `invert` (its index in INVERT_CHOICES), then the image
file. Back, in the order sent: b"\\0" and the 28x28 uint8 input, b"\\1" and why the file cannot be read,
or b"\\2" and an unexpected error's type and message (the request is answered 500 naming it; the worker
goes on). Whatever goes wrong on the server's side of a pipe, every read it held is answered.

Workers are forked from a forkserver that imported torch and lenet once, so a replacement is ready
without importing torch afresh (docs/performance.md#serving says how soon), and forking never copies
the server's own threads (a fork of a process running torch can deadlock).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import os
import signal
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import LenetError
from lenet_cli.serving.worker_process import (
    READY,
    Preprocess,
    ReadFailed,
    input_bytes_or_error,
    work,
)

START_TIMEOUT_S = 120  # importing torch in a fresh process takes seconds on a slow machine
# Reads sent to one worker at a time: enough that it still has work while the event loop is busy for a
# few milliseconds (a forward pass, a burst of requests), few enough that a worker the system pauses
# holds up only these (fewer cost throughput under many clients; more gain nothing).
IN_FLIGHT = 8
LOAD_PERIOD_S = 0.1  # how often the server's own load is read to choose how many workers take reads
CRASHED = "this image crashed the reader"
log = logging.getLogger("lenet.serve")


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection  # the server's end of the pipe


class PreprocessingPool:
    """`await pool.network_input(data, invert)` -> network input bytes or an error message, in the first worker
    process free, or on a thread of this process when made with `workers=0` (tests, and comparison) and
    while no worker is up. Used from one event loop at a time; a new loop reconnects.

    `preprocess` turns an upload into its network input or an error message, in every worker and thread;
    a worker process receives it pickled, so it is a module-level function."""

    def __init__(self, workers: int | None = None, preprocess: Preprocess = input_bytes_or_error):
        self.threads = ThreadPoolExecutor(os.cpu_count() or 1, "lenet-preprocess")
        self.size = 0 if workers == 0 else workers or os.cpu_count() or 1
        self.preprocess, self.restarts = preprocess, 0
        self.workers: list[Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[_Dispatcher] | None = None
        if self.size:
            # A fork of the forkserver, not of this process: it imported torch and lenet once, before any
            # thread started, and each worker starts as a copy of it.
            self.context = multiprocessing.get_context("forkserver")
            self.context.set_forkserver_preload(["lenet_cli.serving.worker_process"])
        started = [self._start() for _ in range(self.size)]
        try:  # each has imported torch and lenet before the server is ready
            self.workers = [self._ready(process, connection) for process, connection in started]
        except LenetError:
            self.workers = [Worker(process, connection) for process, connection in started]
            self.close()
            raise

    @property
    def alive(self) -> int:
        return sum(worker.process.is_alive() for worker in self.workers)

    async def network_input(self, data: bytes | bytearray, invert: str) -> bytes | str:
        loop = asyncio.get_running_loop()
        if not self.size:
            return await loop.run_in_executor(self.threads, self.preprocess, data, invert)
        answer = loop.create_future()
        (await self.connect()).submit(_Read(data, invert, answer))
        return await answer

    async def connect(self) -> _Dispatcher:
        """Watch the workers from this event loop (done by the first read, or at the server's start so that
        a worker that dies is replaced before a request needs it)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._dispatcher = loop, loop.create_task(self._connect())
        return await self._dispatcher  # type: ignore[misc]

    def close(self) -> None:
        """Stop the workers: each sees its pipe close and exits; any that does not is terminated."""
        self.size = 0  # no more replacements
        self.threads.shutdown(wait=True, cancel_futures=True)
        for worker in self.workers:
            worker.connection.close()
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()

    def _start(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=work, args=(theirs, self.preprocess), name="lenet-preprocess", daemon=True
        )
        process.start()
        theirs.close()
        return process, ours

    @staticmethod
    def _ready(process: multiprocessing.process.BaseProcess, connection: Connection) -> Worker:
        try:
            if connection.poll(START_TIMEOUT_S) and connection.recv_bytes() == READY:
                return Worker(process, connection)
        except (EOFError, OSError):
            pass
        raise LenetError("the preprocessing processes did not start")

    def replace(self, stopped: Worker) -> Worker | None:
        """Reap a worker that stopped and start its replacement (blocking: run it off the event loop)."""
        stopped.process.join(timeout=5)
        stopped.connection.close()
        code = stopped.process.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        if not self.size:  # closing
            return None
        started = time.monotonic()
        try:
            worker = self._ready(*self._start())
        except (LenetError, OSError) as error:
            log.error(
                "a preprocessing process (pid %s) stopped, %s, and none could start in its place: %s",
                stopped.process.pid,
                how,
                error,
            )
            return None
        self.workers = [each for each in self.workers if each is not stopped] + [worker]
        self.restarts += 1
        log.warning(
            "a preprocessing process (pid %s) stopped, %s; pid %s took its place, ready in %.2f s (%d restarts)",
            stopped.process.pid,
            how,
            worker.process.pid,
            time.monotonic() - started,
            self.restarts,
        )
        return worker

    async def _connect(self) -> _Dispatcher:
        return _Dispatcher(self, [await _Channel.open(worker) for worker in self.workers])


@dataclass
class _Read:
    data: bytes | bytearray
    invert: str
    answer: asyncio.Future
    retried: bool = False  # sent again, alone, after the worker that held it died


@dataclass
class _Channel:
    """The server's end of one worker's pipe, on one event loop, and the reads sent on it, in order."""

    worker: Worker
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reads: collections.deque[_Read] = field(default_factory=collections.deque)
    suspect: bool = False  # holds one read retried after a crash, and nothing else

    @staticmethod
    async def open(worker: Worker) -> _Channel:
        end = socket.socket(fileno=os.dup(worker.connection.fileno()))  # the Connection keeps its own
        reader, writer = await asyncio.open_connection(sock=end)
        return _Channel(worker, reader, writer)

    def send(self, read: _Read) -> None:
        self.reads.append(read)
        header = struct.pack("!iB", len(read.data) + 1, INVERT_CHOICES.index(read.invert))
        self.writer.writelines([header, read.data])  # buffered by the transport: never blocks


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
    images leave it nearly idle, and every worker takes them (docs/performance.md#serving).

    When a worker dies, the reads it held are sent again, each alone to a worker with nothing else to do
    (its replacement, which starts idle, or else one left to drain): one of them may have killed it, and
    alone, a second death names the image (CRASHED) and no other."""

    def __init__(self, pool: PreprocessingPool, channels: list[_Channel]):
        self.pool, self.channels = pool, channels
        self.waiting: collections.deque[_Read] = collections.deque()
        self.retries: collections.deque[_Read] = collections.deque()
        self.replacing = 0  # workers being started in place of ones that stopped
        self.in_use = len(channels)  # workers given reads
        self.measured_at, self.cpu_at = time.monotonic(), time.process_time()
        self.loop = asyncio.get_running_loop()
        for channel in channels:
            self.loop.create_task(self._hand_out_answers(channel))

    def submit(self, read: _Read) -> None:
        self.waiting.append(read)
        self._send()

    def _send(self) -> None:
        """Hand waiting reads out, each to the worker with the fewest (so 8 clients use both cores); with
        no worker to take them (all stopped, being replaced), read them on this process's threads."""
        reserved = None
        if self.retries and not any(channel.suspect for channel in self.channels):
            idle = next((channel for channel in self.channels if not channel.reads), None)
            if idle is not None:
                idle.suspect = True
                idle.send(self.retries.popleft())
            elif self.channels and not self.replacing:  # else the replacement will start idle: wait for it
                reserved = min(self.channels, key=lambda each: len(each.reads))  # takes no new reads: drains
        usable = [channel for channel in self.channels if not channel.suspect and channel is not reserved]
        if not usable:
            while self.waiting:
                self._read_here(self.waiting.popleft())
            return
        usable = usable[: self._workers_to_use(len(usable))]
        while self.waiting:
            channel = min(usable, key=lambda each: len(each.reads)) if len(usable) > 1 else usable[0]
            if len(channel.reads) >= IN_FLIGHT:
                return
            read = self.waiting.popleft()
            if not read.answer.done():  # else the request went away while it waited
                channel.send(read)

    def _read_here(self, read: _Read) -> None:
        if read.answer.done():
            return
        work = self.loop.run_in_executor(self.pool.threads, self.pool.preprocess, read.data, read.invert)
        work.add_done_callback(lambda done: _settle(read.answer, done))

    def _workers_to_use(self, available: int) -> int:
        """The cores this process has left free over the last LOAD_PERIOD_S, as a number of workers."""
        now = time.monotonic()
        if now - self.measured_at >= LOAD_PERIOD_S:
            cpu = time.process_time()
            busy = (cpu - self.cpu_at) / (now - self.measured_at)  # cores this process kept busy
            self.in_use = free_cores(os.cpu_count() or 1, busy)
            self.measured_at, self.cpu_at = now, cpu
        return max(1, min(self.in_use, available))

    async def _hand_out_answers(self, channel: _Channel) -> None:
        """Resolve the channel's reads in order as its worker answers; if the worker exits, replace it.
        Anything else that goes wrong here ends the worker (its pipe can no longer be trusted), and its
        reads are answered with the error: no request waits forever."""
        try:
            while True:
                (size,) = struct.unpack("!i", await channel.reader.readexactly(4))
                message = await channel.reader.readexactly(size)
                read = channel.reads.popleft()
                channel.suspect = False
                self._send()
                if not read.answer.done():  # not a request that went away
                    _answer(read.answer, message)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self._replace(channel)
        except Exception as error:  # noqa: BLE001 - the channel's end: every read it held hears of it
            log.exception("the pipe to a preprocessing process (pid %s) failed", channel.worker.process.pid)
            for read in channel.reads:
                if not read.answer.done():
                    read.answer.set_exception(error)
            channel.reads.clear()
            channel.worker.process.kill()
            await self._replace(channel)

    async def _replace(self, channel: _Channel) -> None:
        self.channels.remove(channel)
        channel.writer.close()
        for read in channel.reads:
            if read.retried:  # it was alone on the worker: this image killed it, twice
                if not read.answer.done():
                    read.answer.set_result(CRASHED)
            else:
                read.retried = True
                self.retries.append(read)
        self.replacing += 1
        self._send()  # with no worker left, the waiting reads go to threads meanwhile
        try:
            worker = await self.loop.run_in_executor(None, self.pool.replace, channel.worker)
            if worker is not None:
                replacement = await _Channel.open(worker)
                self.channels.append(replacement)
                self.loop.create_task(self._hand_out_answers(replacement))
        except Exception:  # noqa: BLE001 - no replacement: the reads go to the others, or to threads
            log.exception("a preprocessing process could not be replaced")
        finally:
            self.replacing -= 1
            if not self.channels and not self.replacing:  # no worker at all: read here
                self.waiting.extendleft(reversed(self.retries))
                self.retries.clear()
            self._send()


def _settle(answer: asyncio.Future, done: asyncio.Future) -> None:
    """Pass a thread's read on to the request, unless the request went away."""
    if answer.done() or done.cancelled():
        return
    if done.exception() is not None:
        answer.set_exception(done.exception())
    else:
        answer.set_result(done.result())


def _answer(answer: asyncio.Future, message: bytes) -> None:
    """A worker's answer to a read, as the request's result or exception."""
    if message[0] == 0:
        answer.set_result(message[1:])
    elif message[0] == 1:
        answer.set_result(message[1:].decode())
    else:
        kind, _, why = message[1:].decode().partition("\0")
        answer.set_exception(ReadFailed(kind, why))
