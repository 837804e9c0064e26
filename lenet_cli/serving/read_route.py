"""`POST /read`: whole numbers, answered like `lenet read --json`.

Reading a number can take far longer than reading a digit (a field of many pieces), so reads are done
one at a time in a process of their own (read_process.py; on a thread of their own with `--workers 0`),
never on the thread a lone `/predict` is read on nor under the server's interpreter lock: a slow read
delays other reads only, and at most MAX_READS_ACCEPTED of them wait or run at once (past that, 503 and
Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from fastapi import FastAPI, Request
from fastapi.responses import Response

from lenet_cli.core.errors import LenetError
from lenet_cli.inference.numbers import parse_length, read_named
from lenet_cli.serving.read_process import read_numbers, start_reading
from lenet_cli.serving.reader import reading_model, reading_model_path
from lenet_cli.serving.uploads import (
    ClientError,
    busy,
    check_invert,
    png_data_url,
    read_uploads,
    refuse_lone_failure,
)

READERS = 1  # numbers are read one at a time: the other core is the digits'
MAX_READS_ACCEPTED = 16  # reads running or waiting for the read thread; past it, 503


class Reads:
    """Where numbers are read (the reading process, started on the first read or by `start`; or a
    thread), and how many reads it holds."""

    def __init__(self, in_process: bool):
        self.in_process, self.accepted = in_process, 0
        self.executor: Executor | None = None

    def start(self) -> Executor:
        if self.executor is None:
            if self.in_process:
                context = multiprocessing.get_context("forkserver")
                self.executor = ProcessPoolExecutor(READERS, context, initializer=start_reading)
                self.executor.submit(os.getpid)  # the process starts now, not with the first read
            else:
                self.executor = ThreadPoolExecutor(READERS, thread_name_prefix="lenet-read")
        return self.executor

    async def run(self, app: FastAPI, uploads: list, invert: str, bounds: tuple[int, int] | None) -> list:
        """The readings of `uploads`; refused at once when too many are being read or waiting."""
        if self.accepted >= MAX_READS_ACCEPTED:
            raise busy(f"{self.accepted} numbers are being read or waiting (at most {MAX_READS_ACCEPTED})")
        self.accepted += 1
        executor = None
        try:
            executor, loop = self.start(), asyncio.get_running_loop()
            if not self.in_process:
                return await loop.run_in_executor(
                    executor, lambda: read_named(reading_model(app), uploads, invert, bounds)
                )
            return await loop.run_in_executor(
                executor, read_numbers, reading_model_path(app), uploads, invert, bounds
            )
        except BrokenProcessPool:  # the reading process died (killed, out of memory): a new one
            if self.executor is executor:
                self.executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise ClientError(500, "the reading process stopped; try again") from None
        finally:
            self.accepted -= 1

    def close(self) -> None:
        """The server stops: reads waiting are dropped; the one under way finishes."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)


def add_read_route(app: FastAPI, in_process: bool) -> None:
    app.state.reads = Reads(in_process)

    @app.post("/read")
    async def read(
        request: Request, length: str | None = None, invert: str = "auto", include_inputs: bool = False
    ):
        """Whole numbers, answered like `lenet read --json` (with `include_inputs`, each digit's 28x28 input
        as a PNG data URL and its ten probabilities, for the page); read on the read thread."""
        check_invert(invert)
        try:
            bounds = parse_length(length)
        except LenetError as error:
            raise ClientError(422, str(error)) from None
        uploads = await read_uploads(request)
        found = await app.state.reads.run(app, uploads, invert, bounds)
        readings = [reading.to_dict() for reading in found]
        if include_inputs:
            for document, reading in zip(readings, found, strict=True):
                for entry, digit in zip(document.get("digits", []), reading.digits, strict=True):
                    entry.update(input=png_data_url(digit.seen.tobytes()), probabilities=digit.probabilities)
        refuse_lone_failure([reading.error for reading in found])
        return Response(json.dumps({"readings": readings}), media_type="application/json")
