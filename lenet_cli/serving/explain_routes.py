"""The Inside API: POST /explain answers what `lenet explain --json` prints, for uploads as /predict takes
them (the same body limits, content types and errors); GET /explain/kernels gives the convolution kernels
the page shows when a map is hovered; GET /inside.js is the page's Inside view. Explaining runs on the
server's one thread for lone work (as /read does), off the event loop."""

from __future__ import annotations

import asyncio
import json
from importlib import resources

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from lenet_cli.core.model import LeNet5
from lenet_cli.inference.attribution import DEFAULT_METHOD, METHODS
from lenet_cli.inference.explain import Explanation, explain_digits, kernels, rounded
from lenet_cli.serving.batching import Overloaded
from lenet_cli.serving.uploads import (
    ClientError,
    busy,
    check_invert,
    read_uploads,
    refuse_lone_failure,
)
from lenet_cli.serving.worker_process import input_bytes_or_error


def add_explain_routes(app: FastAPI) -> None:
    """The routes, reading and refusing requests with /predict's helpers, so /explain refuses what
    /predict refuses, in the same words."""
    script = resources.files("lenet_cli.serving").joinpath("web/inside.js").read_text()

    def explained_model() -> LeNet5:
        model = app.state.batcher.model  # the model answering now (Teach may swap it)
        if not isinstance(model, LeNet5):
            raise ClientError(422, "explain needs a .pt checkpoint; this server runs an exported model")
        return model

    @app.get("/inside.js")
    def inside_script() -> Response:
        return Response(script, media_type="text/javascript")

    @app.get("/explain/kernels")
    def explain_kernels() -> Response:
        weights = kernels(explained_model())
        document = {
            name: {"shape": list(values.shape), "values": rounded(values)} for name, values in weights.items()
        }
        return Response(json.dumps(document), media_type="application/json")

    @app.post("/explain")
    async def explain(
        request: Request,
        method: str = DEFAULT_METHOD,
        invert: str = "auto",
        brief: bool = False,
        target: int | None = None,
    ) -> Response:
        if method not in METHODS:
            raise ClientError(422, f"method must be one of {', '.join(METHODS)}")
        check_invert(invert)
        if target is not None and not 0 <= target < len(app.state.names):
            raise ClientError(422, f"target must be between 0 and {len(app.state.names) - 1}")
        model = explained_model()
        uploads = await read_uploads(request)
        try:
            app.state.batcher.reserve(len(uploads))
        except Overloaded as error:
            raise busy(str(error)) from None
        try:
            also = () if target is None else (target,)
            found = await asyncio.get_running_loop().run_in_executor(
                app.state.alone, explain_uploads, model, uploads, method, invert, also
            )
        finally:
            app.state.batcher.release(len(uploads))
        refuse_lone_failure([explanation.error for explanation in found])
        document = {"checkpoint": app.state.info.path, "method": method}
        document["explanations"] = [explanation.to_dict(brief) for explanation in found]
        return Response(json.dumps(document), media_type="application/json")


def explain_uploads(
    model: LeNet5,
    uploads: list[tuple[str, bytes | bytearray]],
    method: str,
    invert: str,
    also: tuple[int, ...],
) -> list[Explanation]:
    """Each upload read as /predict reads it, then explained; an unreadable one gets its error."""
    digits = [input_bytes_or_error(data, invert) for _, data in uploads]
    readable = [
        np.frombuffer(digit, np.uint8).reshape(28, 28) for digit in digits if isinstance(digit, bytes)
    ]
    explained = iter(explain_digits(model, np.stack(readable), method, also) if readable else [])
    results = []
    for (name, _), digit in zip(uploads, digits, strict=True):
        explanation = (
            Explanation(path=name, method=method, error=digit) if isinstance(digit, str) else next(explained)
        )
        explanation.path = name
        results.append(explanation)
    return results
