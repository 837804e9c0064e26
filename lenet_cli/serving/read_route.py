"""`POST /read`: whole numbers, answered like `lenet read --json`.

Reading a number can take far longer than reading a digit (a field of many pieces), so reads have a
thread of their own, never the one a lone `/predict` is read on: a slow read delays other reads only,
and at most MAX_READS_ACCEPTED of them wait or run at once (past that, 503 and Retry-After).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import Response

from lenet_cli.core.config import INVERT_CHOICES
from lenet_cli.core.errors import LenetError
from lenet_cli.inference.numbers import parse_length, read_named
from lenet_cli.serving.reader import reading_model
from lenet_cli.serving.uploads import ClientError, busy, png_data_url, read_uploads

READ_THREADS = 1  # numbers are read one at a time: the other core is the digits'
MAX_READS_ACCEPTED = 16  # reads running or waiting for the read thread; past it, 503


class Reads:
    """The read thread and how many reads it holds."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="lenet-read")
        self.accepted = 0

    async def run(self, app: FastAPI, uploads: list, invert: str, bounds: tuple[int, int] | None) -> list:
        """The readings of `uploads`, read on the read thread; refused at once when it holds too many."""
        if self.accepted >= MAX_READS_ACCEPTED:
            raise busy(f"{self.accepted} numbers are being read or waiting (at most {MAX_READS_ACCEPTED})")
        self.accepted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, lambda: read_named(reading_model(app), uploads, invert, bounds)
            )
        finally:
            self.accepted -= 1


def add_read_route(app: FastAPI) -> None:
    app.state.reads = Reads()

    @app.post("/read")
    async def read(
        request: Request, length: str | None = None, invert: str = "auto", include_inputs: bool = False
    ):
        """Whole numbers, answered like `lenet read --json` (with `include_inputs`, each digit's 28x28 input
        as a PNG data URL and its ten probabilities, for the page); read on the read thread."""
        if invert not in INVERT_CHOICES:
            raise ClientError(422, f"invert must be one of {', '.join(INVERT_CHOICES)}")
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
        if len(readings) == 1 and readings[0].get("error"):  # one image, unreadable: the request failed
            raise ClientError(422, readings[0]["error"])
        return Response(json.dumps({"readings": readings}), media_type="application/json")
