"""The Teach API: POST /teach starts a run, GET /teach its state, progress and figures, POST /teach/undo
goes back to the model before (teaching.py does the work). Only with `--collect`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from torch import nn

from lenet_cli.formats.model_info import ModelInfo
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.teach_state import Answering
from lenet_cli.serving.teach_steps import TeachSettings
from lenet_cli.serving.teaching import Refused, Teacher


def add_teach_routes(app: FastAPI, model: nn.Module, info: ModelInfo, options: ServeOptions) -> None:
    """The routes, and `app.state.origin` (which model answers and where it came from, for GET /model).
    `app.state.teacher` is None without --collect; the server stops it when it stops."""
    first = Answering(model, info, "started with")
    app.state.origin = first.to_dict()
    app.state.teacher = None
    if options.collect_dir is not None:
        settings = TeachSettings(
            options.collect_dir, options.data_dir, options.checkpoint_dir, app.state.names
        )

        def use(answering: Answering) -> None:
            app.state.batcher.model = answering.model.eval()  # one store: a forward pass sees one model
            app.state.info, app.state.origin = answering.info, answering.to_dict()

        app.state.teacher = Teacher(settings, first, use)

    def teacher() -> Teacher:
        if app.state.teacher is None:
            raise Refused(404, "teaching learns from collected drawings; start the server with --collect DIR")
        return app.state.teacher

    @app.get("/teach")
    def teach_state() -> Any:
        return json_unless_refused(lambda: teacher().status())

    @app.post("/teach")
    def teach() -> Any:
        return json_unless_refused(lambda: teacher().start(), 202)

    @app.post("/teach/undo")
    def undo() -> Any:
        return json_unless_refused(lambda: teacher().undo())


def json_unless_refused(work: Any, status: int = 200) -> JSONResponse:
    """`work()`'s document as JSON with `status`, or its refusal's error with the refusal's status."""
    try:
        return JSONResponse(work(), status_code=status)
    except Refused as refused:
        return JSONResponse({"error": str(refused)}, status_code=refused.status)


def stop_teaching(app: FastAPI) -> None:
    """The server stops: a run under way is ended and leaves nothing behind."""
    if getattr(app.state, "teacher", None) is not None:
        app.state.teacher.stop()
