"""`lenet serve`: the command that starts the page and the HTTP API. It is registered on the app in
commands.py; FastAPI, uvicorn and torch are imported inside it."""

from __future__ import annotations

import typer

from lenet_cli.cli.options import (
    Collect,
    CollectLimit,
    Host,
    IdleTimeout,
    MaxBatch,
    MaxConnections,
    MaxPending,
    Port,
    RequestTimeout,
    ServeModel,
    TeachCheckpointDir,
    TeachDataDir,
    UploadMemory,
    WindowMs,
    Workers,
)
from lenet_cli.core.config import DEFAULT_CHECKPOINT_DIR
from lenet_cli.serving.options import ServeOptions

SERVE_DEFAULTS = ServeOptions()


def serve(
    checkpoint: ServeModel = None,
    host: Host = SERVE_DEFAULTS.host,
    port: Port = SERVE_DEFAULTS.port,
    window_ms: WindowMs = SERVE_DEFAULTS.window_ms,
    max_batch: MaxBatch = SERVE_DEFAULTS.max_batch,
    max_pending: MaxPending = SERVE_DEFAULTS.max_pending,
    upload_memory_mib: UploadMemory = SERVE_DEFAULTS.upload_memory_mib,
    request_timeout: RequestTimeout = SERVE_DEFAULTS.request_timeout_s,
    idle_timeout: IdleTimeout = SERVE_DEFAULTS.idle_timeout_s,
    max_connections: MaxConnections = SERVE_DEFAULTS.max_connections,
    workers: Workers = None,
    collect: Collect = None,
    collect_limit: CollectLimit = SERVE_DEFAULTS.collect_limit,
    data_dir: TeachDataDir = SERVE_DEFAULTS.data_dir,
    checkpoint_dir: TeachCheckpointDir = SERVE_DEFAULTS.checkpoint_dir,
) -> None:
    """Serve a page to draw a digit and see what the network thinks, and an HTTP API.

    Example: lenet serve checkpoints/run-1/last.pt --collect my-digits

    POST /predict takes an image as the body (curl --data-binary @digit.png URL/predict) or as multipart
    files and answers like lenet predict --json; GET /model, GET /health. With --collect, the page's Teach
    fine-tunes the model on the saved drawings (POST /teach). Ctrl-C stops it.
    """
    from lenet_cli.formats.shipped import default_model
    from lenet_cli.serving.server import exposure_warning
    from lenet_cli.serving.server import serve as run

    model_path, note = (checkpoint, None) if checkpoint else default_model(DEFAULT_CHECKPOINT_DIR)
    teach = {"data_dir": data_dir, "checkpoint_dir": checkpoint_dir}
    options = ServeOptions(
        host,
        port,
        window_ms,
        max_batch,
        max_pending,
        collect,
        upload_memory_mib,
        request_timeout,
        idle_timeout,
        max_connections,
        collect_limit,
        **teach,
    )
    for line in (note, exposure_warning(options)):
        if line:
            typer.echo(line, err=True)

    run(
        model_path,
        options,
        workers,
        lambda url: typer.echo(f"Serving {model_path} at {url}  (Ctrl-C stops it)"),
    )
    typer.echo("Stopped.")
