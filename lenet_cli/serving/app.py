"""`lenet serve`: a page to draw a digit and see what LeNet-5 thinks, and an HTTP API for programs.

`create_app` builds the FastAPI app around a loaded model, so tests make one in process. Uploads are
decoded and put in MNIST form by the same preprocessing as `lenet predict`, in a pool of processes; the
network inputs of concurrent requests share forward passes (`batching.DynamicBatcher`). The server
never reads a path a client names, refuses requests whose Host or Origin is not its own (another site
must not drive it), answers bad input with a 4xx and `{"error": ...}`, and refuses work past a bound
with 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from torch import nn

from lenet_cli.core.config import DEFAULT_TOP_K, INVERT_CHOICES
from lenet_cli.core.errors import LenetError
from lenet_cli.core.reading import MiB
from lenet_cli.core.writing import atomic_write, make_folder
from lenet_cli.data.datasets import class_names
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.inference.numbers import parse_length, read_named
from lenet_cli.inference.predict import Prediction
from lenet_cli.inference.summary import summarize
from lenet_cli.serving.batching import DynamicBatcher, Overloaded
from lenet_cli.serving.explain_routes import add_explain_routes
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.reader import mark_reader, reading_model
from lenet_cli.serving.teach_routes import add_teach_routes
from lenet_cli.serving.workers import PreprocessingPool, digit_or_error, warm_up_image

MAX_BODY_BYTES = 16 * MiB
MAX_FILES = 64  # images in one multipart request
MAX_DRAWING_BYTES = 1 * MiB  # a drawing the page saves with --collect (its canvas PNG is a few KiB)
# Content types of a body that is the image file itself; curl --data-binary sends the form type.
RAW_BODY_TYPES = ("application/octet-stream", "application/x-www-form-urlencoded")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class ClientError(Exception):
    """A request the server cannot serve: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def create_app(model: nn.Module, info: ModelInfo, options: ServeOptions, pool: PreprocessingPool) -> FastAPI:
    """The server's app: the page, /predict, /model, /health, and /collect and /teach with
    `options.collect_dir`."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if pool.size:
            await pool.connect()  # a worker that dies is replaced even before a request needs one
        yield

    app = FastAPI(
        title="lenet", docs_url=None, redoc_url=None, lifespan=lifespan
    )  # /docs: Swagger from a CDN
    model.eval()
    app.state.alone = ThreadPoolExecutor(1, thread_name_prefix="lenet-alone")
    app.state.batcher = DynamicBatcher(
        model, options.window_ms / 1000, options.max_batch, options.max_pending
    )
    app.state.names = class_names(info.dataset)
    app.state.info = info  # the model answering; Teach may swap in another
    mark_reader(app, info.path)
    _install_guards(app, options)
    page_html = resources.files("lenet_cli.serving").joinpath("web/index.html").read_text()  # read once

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "preprocessing_processes": pool.alive, "restarts": pool.restarts}

    @app.get("/model")
    def describe_model() -> dict[str, Any]:
        info = app.state.info
        document = summarize(None).to_dict()
        document["checkpoint"] = info.summary() if info.format == "checkpoint" else {"path": info.path}
        document["checkpoint"]["format"] = info.format
        document["checkpoint"]["test_accuracy"] = info.test_accuracy
        document["class_names"] = app.state.names
        document["answering"] = app.state.origin
        return document

    @app.post("/predict")
    async def predict(
        request: Request, top_k: int = DEFAULT_TOP_K, invert: str = "auto", include_input: bool = False
    ):
        if not 1 <= top_k <= len(app.state.names):
            raise ClientError(422, f"top_k must be between 1 and {len(app.state.names)}")
        if invert not in INVERT_CHOICES:
            raise ClientError(422, f"invert must be one of {', '.join(INVERT_CHOICES)}")
        uploads = await read_uploads(request)
        predictions = await predict_uploads(app, pool, uploads, top_k, invert, include_input)
        if len(predictions) == 1 and predictions[0].get("error"):  # one image, unreadable: the request failed
            raise ClientError(422, predictions[0]["error"])
        document = {"checkpoint": app.state.info.path, "predictions": predictions}
        return Response(json.dumps(document), media_type="application/json")  # no re-encoding of plain data

    _add_collect_routes(app, options.collect_dir, options.collect_limit)
    _add_read_route(app)
    add_teach_routes(app, model, info, options)
    add_explain_routes(app, ClientError, read_uploads)
    return app


def warm_up(app: FastAPI) -> None:
    """Read one digit and run one forward pass before the first request, which would otherwise pay for
    lazy initialisation (Pillow's plugins, torch's first calls) on this process's threads."""
    digit = app.state.alone.submit(digit_or_error, warm_up_image(), "auto").result()
    app.state.batcher.forward([([digit], 1)])
    app.state.batcher.batch_sizes.clear()


async def predict_uploads(
    app: FastAPI,
    pool: PreprocessingPool,
    uploads: list[tuple[str, bytes | bytearray]],
    top_k: int,
    invert: str,
    include_input: bool,
) -> list[dict[str, Any]]:
    """What `lenet predict --json` says of each upload: preprocessed in the pool, classified in batches."""

    batcher: DynamicBatcher = app.state.batcher
    # A lone image (nothing else in flight) is read on a thread here: handing it to another process costs
    # more than it saves. Under load, images go to the worker processes.
    alone = batcher.pending == 0 and len(uploads) == 1
    try:
        batcher.reserve(len(uploads))
    except Overloaded as error:
        raise ClientError(
            503, f"the server is busy ({error}); try again shortly", {"Retry-After": "1"}
        ) from None
    try:
        loop = asyncio.get_running_loop()
        if alone:
            reads = [loop.run_in_executor(app.state.alone, digit_or_error, uploads[0][1], invert)]
        else:
            reads = [pool.read(data, invert) for _, data in uploads]
        digits = [await reads[0]] if len(reads) == 1 else await asyncio.gather(*reads)  # no task for one
        readable = [digit for digit in digits if isinstance(digit, bytes)]
        rows = iter(await batcher.rank(readable, top_k) if readable else [])
    finally:
        batcher.release(len(uploads))
    documents = []
    for (name, _), digit in zip(uploads, digits, strict=True):
        if isinstance(digit, str):
            documents.append(Prediction(path=name, error=digit).to_dict())
            continue
        labels, probs = next(rows)
        prediction = Prediction(name, labels[0], probs[0], list(zip(labels, probs, strict=True))).to_dict()
        if include_input:
            prediction["input"] = png_data_url(digit)
        documents.append(prediction)
    return documents


def png_data_url(digit: bytes) -> str:
    """The 28x28 network input as a PNG data URL, for the page to show what the network saw."""
    buffer = io.BytesIO()
    Image.frombytes("L", (28, 28), digit).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def read_body(request: Request) -> bytearray:
    """The request body, refused (413) past MAX_BODY_BYTES before more is read into memory. One buffer
    that grows (no list of chunks joined at the end): a body is held once, as the memory budget counts."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ClientError(413, f"the body is over the {MAX_BODY_BYTES // MiB} MiB limit")
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > MAX_BODY_BYTES:
                raise ClientError(413, f"the body is over the {MAX_BODY_BYTES // MiB} MiB limit")
            body += chunk
    except ClientDisconnect:  # gone, or cut off for being too slow: nobody hears the answer
        raise ClientError(400, "the client went away before its body arrived") from None
    return body


async def read_uploads(request: Request) -> list[tuple[str, bytes | bytearray]]:
    """(name, bytes) of each image: the raw body (named "-", as `lenet predict -`), or multipart files."""
    content_type = (
        request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    )
    body = await read_body(request)
    if content_type == "multipart/form-data":
        request._body = bytes(body)  # starlette parses the form from the body already read (and capped)
        try:
            form = await request.form(max_files=MAX_FILES, max_part_size=MAX_BODY_BYTES)
        except Exception as error:  # python-multipart's and starlette's parse errors
            raise ClientError(400, f"cannot read the multipart form ({error})") from None
        files = [value for _, value in form.multi_items() if hasattr(value, "read")]
        if not files:
            raise ClientError(400, "the form holds no files; send images as multipart files")
        return [(upload.filename or "-", await upload.read()) for upload in files]
    if not (content_type.startswith("image/") or content_type in RAW_BODY_TYPES):
        raise ClientError(
            415, f"send an image (image/*, application/octet-stream or multipart), not {content_type}"
        )
    if not body:
        raise ClientError(400, "the body is empty; send an image file")
    return [("-", body)]


def _install_guards(app: FastAPI, options: ServeOptions) -> None:
    """Host and Origin checks (no other site, and no DNS-rebound name, may drive this server) and the
    answers to every error: a 4xx or 503 with {"error": ...}, never a 500 with a traceback."""
    own_hosts = {f"{name}:{options.port}" for name in (*LOOPBACK_NAMES, options.host)}
    app.add_middleware(
        Admission,
        own_hosts=own_hosts if options.loopback_only else None,
        port=options.port,
        budget=options.upload_memory_mib * MiB,
    )

    @app.exception_handler(ClientError)
    async def client_error(_request: Request, error: ClientError) -> JSONResponse:
        return _error(error.status, str(error), error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(
            error.status_code, str(error.detail).lower() if error.status_code == 404 else str(error.detail)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return _error(422, f"{'.'.join(map(str, first['loc'][1:]))}: {first['msg']}")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        return _error(500, f"unexpected {type(error).__name__}: {error}")


class Admission:
    """Plain ASGI middleware (no per-request task, unlike @app.middleware) that admits a request or refuses
    it before its body is read: a Host that is not this server's own (DNS rebinding), an Origin that is not
    this server's page (a cross-site post), and a body that would take the bytes of bodies being received
    or waiting to be read past `budget` (503 and Retry-After; the client tries again)."""

    def __init__(self, app: Any, own_hosts: set[str] | None, port: int, budget: int):
        self.app, self.own_hosts, self.port = app, own_hosts, port
        self.budget, self.used = budget, 0  # bytes: at most, and taken now

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin")
        refusal = None
        if self.own_hosts is not None and host not in self.own_hosts:
            refusal = f"requests for host {host or '(none)'} are refused; use http://127.0.0.1:{self.port}/"
        elif origin is not None and origin.decode("latin-1") != f"{scope['scheme']}://{host}":
            refusal = f"requests from {origin.decode('latin-1')} are refused: only this server's own page may call it"
        if refusal is not None:
            return await _error(403, refusal)(scope, receive, send)
        declared = headers.get(b"content-length")
        if declared is None:
            if b"transfer-encoding" not in headers:  # no body
                return await self.app(scope, receive, send)
            return await self._counting(scope, receive, send)
        size = int(declared) if declared.isdigit() else 0
        if size > MAX_BODY_BYTES:  # refused by the route (413) without reading it: nothing to count
            return await self.app(scope, receive, send)
        if self.used + size > self.budget:
            return await self._busy()(scope, receive, send)
        self.used += size
        try:
            await self.app(scope, receive, send)
        finally:
            self.used -= size

    async def _counting(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A body of no declared length: counted as it arrives."""
        taken = 0

        async def counted_receive() -> dict[str, Any]:
            nonlocal taken
            message = await receive()
            size = len(message.get("body", b""))
            if self.used + size > self.budget:
                raise ClientError(503, self._busy_message(), {"Retry-After": "1"})
            self.used, taken = self.used + size, taken + size
            return message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.used -= taken

    def _busy_message(self) -> str:
        return (
            f"the server is receiving or holding {self.used / MiB:.0f} MiB of uploads, at most "
            f"{self.budget / MiB:.0f} MiB (--upload-memory-mib); try again shortly"
        )

    def _busy(self) -> JSONResponse:
        return _error(503, self._busy_message(), {"Retry-After": "1"})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_read_route(app: FastAPI) -> None:
    @app.post("/read")
    async def read(
        request: Request, length: str | None = None, invert: str = "auto", include_inputs: bool = False
    ):
        """Whole numbers, answered like `lenet read --json` (with `include_inputs`, each digit's 28x28 input
        as a PNG data URL and its ten probabilities, for the page); read on a thread, off the event loop."""
        if invert not in INVERT_CHOICES:
            raise ClientError(422, f"invert must be one of {', '.join(INVERT_CHOICES)}")
        try:
            bounds = parse_length(length)
        except LenetError as error:
            raise ClientError(422, str(error)) from None
        uploads = await read_uploads(request)
        work = asyncio.get_running_loop().run_in_executor(
            app.state.alone, lambda: read_named(reading_model(app), uploads, invert, bounds)
        )
        found = await work
        readings = [reading.to_dict() for reading in found]
        if include_inputs:
            for document, reading in zip(readings, found, strict=True):
                for entry, digit in zip(document.get("digits", []), reading.digits, strict=True):
                    entry.update(input=png_data_url(digit.seen.tobytes()), probabilities=digit.probabilities)
        if len(readings) == 1 and readings[0].get("error"):  # one image, unreadable: the request failed
            raise ClientError(422, readings[0]["error"])
        return Response(json.dumps({"readings": readings}), media_type="application/json")


def _add_collect_routes(app: FastAPI, folder: Path | None, limit: int) -> None:
    """`--collect DIR`: the page's drawings saved as DIR/<label>/<server-chosen name>.png (ImageFolder
    layout, for `lenet evaluate --images` and `lenet train --images`), at most `limit` per class, each at
    most MAX_DRAWING_BYTES (the disk it may take is bounded). Without it, nothing is written."""

    def counts() -> dict[str, int]:
        return {
            name: sum(1 for _ in (folder / name).glob("*.png")) if (folder / name).is_dir() else 0
            for name in map(str, range(len(app.state.names)))
        }

    @app.get("/collect")
    def collected() -> dict[str, Any]:
        return {
            "enabled": folder is not None,
            "folder": str(folder) if folder else None,
            "counts": counts() if folder else {},
            "limit": limit,
        }

    @app.post("/collect")
    async def collect(request: Request, label: int) -> dict[str, Any]:
        if folder is None:
            raise ClientError(404, "collecting is off; start the server with --collect DIR")
        if not 0 <= label < len(app.state.names):
            raise ClientError(422, f"label must be between 0 and {len(app.state.names) - 1}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_DRAWING_BYTES:
            raise ClientError(413, f"a drawing is at most {MAX_DRAWING_BYTES // MiB} MiB")
        saved = counts()
        if saved[str(label)] >= limit:
            raise ClientError(
                507,
                f"{folder / str(label)} holds {saved[str(label)]:,} drawings, the limit "
                "(--collect-limit); no more are saved for this class",
            )
        body = await read_body(request)
        if len(body) > MAX_DRAWING_BYTES:
            raise ClientError(413, f"a drawing is at most {MAX_DRAWING_BYTES // MiB} MiB")
        if not body.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ClientError(415, "send the drawing as a PNG")
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.png"
        target = folder / str(label) / name
        try:
            atomic_write(
                make_folder(target.parent) / target.name, lambda handle: handle.write(body), "drawing"
            )
        except LenetError as error:  # the folder or the file cannot be written: the disk, not the request
            raise ClientError(507, str(error)) from None
        return {"saved": str(target.relative_to(folder)), "counts": counts()}
