"""Running `lenet serve`: load the model once, start the preprocessing processes, bind the socket, and
serve with uvicorn until Ctrl-C; then stop cleanly."""

from __future__ import annotations

import gc
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lenet_cli.core.errors import LenetError
from lenet_cli.core.writing import make_folder
from lenet_cli.formats.model_files import load_any_model
from lenet_cli.serving.app import create_app, warm_up
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.workers import PreprocessingPool


def serve(
    model_path: Path, options: ServeOptions, workers: int | None, announce: Callable[[str], None]
) -> None:
    """Serve `model_path` as `options` say; `announce` hears where, once the server is ready."""
    import uvicorn

    model, info = load_any_model(model_path, "cpu")
    if options.collect_dir is not None:
        _check_collect_folder(options.collect_dir)
    listener = bind(options.host, options.port)
    options = replace(options, port=listener.getsockname()[1])  # the port asked for may be 0: any free one
    pool = PreprocessingPool(workers)
    if workers != 0:
        import torch

        torch.set_num_threads(1)  # the cores are the preprocessing processes'; batched LeNet-5 needs no more
    try:
        app = create_app(model, info, options, pool)
        warm_up(app)
        # Everything alive now (torch, FastAPI, the model) lives as long as the server: out of the
        # collector's sight, a full collection under load is not a long pause; and young objects are
        # collected every 10,000 allocations rather than 700 (what the pauses cost: docs/performance.md).
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
            lifespan="off",
            proxy_headers=False,  # no proxy in front: clients' X-Forwarded-* headers are not to be trusted
        )
        announce(f"http://{_url_host(options.host)}:{options.port}/")
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
        try:
            uvicorn.Server(config).run(sockets=[listener])
        except (KeyboardInterrupt, StopServer):  # uvicorn shuts down, then raises the signal again
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        listener.close()
        pool.close()


class StopServer(Exception):
    """SIGTERM: stop as on Ctrl-C (uvicorn re-raises the signal once it has shut down)."""


def _stop_on_sigterm(signal_number: int, frame: object) -> None:
    raise StopServer


def exposure_warning(options: ServeOptions) -> str | None:
    """What to say when the server is reachable from other machines."""
    if options.loopback_only:
        return None
    collect = " and write into the --collect folder" if options.collect_dir else ""
    return (
        f"Warning: listening on {options.host}, reachable from other machines: the server has no "
        f"authentication, so anyone who can reach it can use it{collect}"
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear error (a port in use, a host that is not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise LenetError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listener.set_inheritable(True)
    return listener


def _check_collect_folder(folder: Path) -> None:
    make_folder(folder, "--collect folder ")
    if not folder.is_dir():
        raise LenetError(f"--collect {folder} is not a folder")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
