"""Which model `POST /read` reads numbers with: the one shipped for reading while the server answers with
the digit model lenet ships (a taught model answers single digits; the reader is not taught), else the
model answering, the user's own."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI

from lenet_cli.formats.model_files import load_any_model
from lenet_cli.formats.shipped import READER, is_shipped

_loading = threading.Lock()


def mark_reader(app: FastAPI, model_path: Any) -> None:
    """At the start: read numbers with the shipped reader when the server starts with the shipped model."""
    app.state.shipped_reader = None
    app.state.reads_with_shipped = is_shipped(model_path) and READER.is_file()


def reading_model(app: FastAPI) -> Any:
    """The model for the next /read; the shipped reader is loaded on the first one (on the reading thread)."""
    if not app.state.reads_with_shipped:
        return app.state.batcher.model  # Teach may have swapped in another since the start
    with _loading:
        if app.state.shipped_reader is None:
            model, _ = load_any_model(READER, "cpu")
            app.state.shipped_reader = model.eval()
    return app.state.shipped_reader


def reading_model_path(app: FastAPI) -> str:
    """Where the model for the next /read is, for the reading process (which loads it itself)."""
    return str(READER) if app.state.reads_with_shipped else str(app.state.info.path)
