"""Running `lenet serve`: load the model once, start the preprocessing processes, bind the socket, and
serve with uvicorn until Ctrl-C; then stop cleanly."""

from __future__ import annotations

import gc
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lenet_cli.core.errors import LenetError
from lenet_cli.core.writing import make_folder
from lenet_cli.formats.model_files import load_any_model
from lenet_cli.serving.app import create_app, warm_up
from lenet_cli.serving.connections import ConnectionLimits, protocol_with
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.teach_routes import stop_teaching
from lenet_cli.serving.workers import PreprocessingPool

# File descriptors the server needs besides its connections: the listening socket, the pipes to the
# preprocessing processes, the forkserver's, the libraries' and the --collect folder's files.
OWN_DESCRIPTORS = 256


def serve(
    model_path: Path, options: ServeOptions, workers: int | None, announce: Callable[[str], None]
) -> None:
    """Serve `model_path` as `options` say; `announce` hears where, once the server is ready."""
    import uvicorn

    model, info = load_any_model(model_path, "cpu")
    _allow_descriptors(options.max_connections + OWN_DESCRIPTORS)
    _return_large_blocks()
    if options.collect_dir is not None:
        _check_collect_folder(options.collect_dir)
    listener = bind(options.host, options.port)
    options = replace(options, port=listener.getsockname()[1])  # the port asked for may be 0: any free one
    pool = PreprocessingPool(workers)
    if workers != 0:
        import torch

        torch.set_num_threads(1)  # the cores are the preprocessing processes'; batched LeNet-5 needs no more
    app = None
    try:
        app = create_app(model, info, options, pool)
        warm_up(app, pool)
        # Everything alive now (torch, FastAPI, the model) lives as long as the server: out of the
        # collector's sight, a full collection under load is not a long pause; and young objects are
        # collected every 10,000 allocations rather than 700 (what the pauses cost: docs/performance.md).
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
        limits = ConnectionLimits(options.request_timeout_s, options.max_connections)
        config = uvicorn.Config(
            app,
            http=protocol_with(limits),
            timeout_keep_alive=options.idle_timeout_s,  # type: ignore[arg-type]
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
            lifespan="on",  # the app starts watching its preprocessing processes
            proxy_headers=False,  # no proxy in front: clients' X-Forwarded-* headers are not to be trusted
        )
        _log_to_stderr()
        announce(f"http://{_url_host(options.host)}:{options.port}/")
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
        try:
            uvicorn.Server(config).run(sockets=[listener])
        except (KeyboardInterrupt, StopServer):  # uvicorn shuts down, then raises the signal again
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if app is not None:
            stop_teaching(app)
            app.state.reads.close()
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


def _allow_descriptors(needed: int) -> None:
    """Raise this process's limit on open files to what --max-connections needs, or say why it can't."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise LenetError(
                f"--max-connections {needed - OWN_DESCRIPTORS} needs {needed} open files, and this process may "
                f"have {hard} (ulimit -n); lower --max-connections"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _return_large_blocks() -> None:
    """Have glibc map every block of 8 MiB or more on its own and unmap it when freed (its default
    threshold rises with the largest block freed, up to 32 MiB, and freed bodies then stay resident), so
    the server's resident memory follows the large bodies it holds, which the upload budget bounds. Not
    lower: a 1 MP image's working arrays (up to 8 MB) would then be mapped, zeroed and unmapped on every
    request, which made a lone 1 MP drawing's preprocessing markedly slower (docs/performance.md)."""
    import ctypes
    import sys

    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None).mallopt(-3, 8 * 1024 * 1024)  # M_MMAP_THRESHOLD; musl has no mallopt
    except (OSError, AttributeError):
        pass


def _log_to_stderr() -> None:
    """The server's own warnings (a preprocessing process restarted) on stderr, as uvicorn's are."""
    logger = logging.getLogger("lenet")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:  %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def _check_collect_folder(folder: Path) -> None:
    make_folder(folder, "--collect folder ")
    if not folder.is_dir():
        raise LenetError(f"--collect {folder} is not a folder")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
