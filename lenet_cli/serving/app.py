"""`lenet serve`: a page to draw a digit and see what LeNet-5 thinks, and an HTTP API for programs.

`create_app` builds the FastAPI app around a loaded model, so tests make one in process. Uploads are
decoded and put in MNIST form by the same preprocessing as `lenet predict`, in a pool of processes; the
network inputs of concurrent requests share forward passes (`batching.DynamicBatcher`). The server
never reads a path a client names, refuses requests whose Host or Origin is not its own (another site
must not drive it), answers bad input with a 4xx and `{"error": ...}`, and refuses work past a bound
with 503 and Retry-After. Each group of routes lives in a module of its own and is added here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from torch import nn

from lenet_cli.core.config import DEFAULT_TOP_K, INVERT_CHOICES
from lenet_cli.data.datasets import class_names
from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.inference.predict import Prediction
from lenet_cli.inference.summary import summarize
from lenet_cli.serving.batching import DynamicBatcher, Overloaded
from lenet_cli.serving.collect_routes import add_collect_routes
from lenet_cli.serving.explain_routes import add_explain_routes
from lenet_cli.serving.guards import install_guards
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.read_route import add_read_route
from lenet_cli.serving.reader import mark_reader
from lenet_cli.serving.teach_routes import add_teach_routes
from lenet_cli.serving.uploads import ClientError, busy, png_data_url, read_uploads
from lenet_cli.serving.worker_process import warm_up_image
from lenet_cli.serving.workers import PreprocessingPool


def create_app(model: nn.Module, info: ModelInfo, options: ServeOptions, pool: PreprocessingPool) -> FastAPI:
    """The server's app: the page, /predict, /read, /model, /health, and /collect and /teach with
    `options.collect_dir`."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if pool.size:
            await pool.connect()  # a worker that dies is replaced even before a request needs one
        yield

    # docs_url=None: Swagger's page loads its scripts from a CDN
    app = FastAPI(title="lenet", docs_url=None, redoc_url=None, lifespan=lifespan)
    model.eval()
    app.state.alone = ThreadPoolExecutor(1, thread_name_prefix="lenet-alone")
    app.state.batcher = DynamicBatcher(
        model, options.window_ms / 1000, options.max_batch, options.max_pending
    )
    app.state.names = class_names(info.dataset)
    app.state.info = info  # the model answering; Teach may swap in another
    mark_reader(app, info.path)
    install_guards(app, options)
    add_page_routes(app, pool)
    add_predict_route(app, pool)
    add_read_route(app, in_process=pool.size > 0)
    add_collect_routes(app, options.collect_dir, options.collect_limit)
    add_teach_routes(app, model, info, options)
    add_explain_routes(app)
    return app


def add_page_routes(app: FastAPI, pool: PreprocessingPool) -> None:
    """GET /, /health and /model."""
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


def add_predict_route(app: FastAPI, pool: PreprocessingPool) -> None:
    """POST /predict: one image as the body, or multipart files; answered like `lenet predict --json`."""

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


def warm_up(app: FastAPI, pool: PreprocessingPool) -> None:
    """Read one digit and run one forward pass before the first request, which would otherwise pay for
    lazy initialisation (Pillow's plugins, torch's first calls) on this process's threads."""
    digit = app.state.alone.submit(pool.preprocess, warm_up_image(), "auto").result()
    app.state.batcher.forward([([digit], 1)])
    app.state.batcher.batch_sizes.clear()
    app.state.reads.start()


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
        raise busy(str(error)) from None
    try:
        loop = asyncio.get_running_loop()
        if alone:
            reads = [loop.run_in_executor(app.state.alone, pool.preprocess, uploads[0][1], invert)]
        else:
            reads = [pool.network_input(data, invert) for _, data in uploads]
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
