"""`lenet serve`'s settings, declared once: the command line takes its defaults from here. No FastAPI
here, so the CLI can read them without importing the server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lenet_cli.core.config import DEFAULT_CHECKPOINT_DIR, DEFAULT_DATA_DIR


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    # How long a request waits for others to share its forward pass (0: no batching). Under load the wait
    # is spent instead of queueing for a worker, and larger batches leave more CPU; a lone request never
    # waits. The measured trade-off is in docs/performance.md.
    window_ms: float = 10.0
    max_batch: int = 64  # images in one forward pass at most
    max_pending: int = 512  # images accepted and not yet answered; past it, 503
    collect_dir: Path | None = None  # `--collect DIR`: the page may save drawings into DIR/<label>/
    # Bytes of request bodies being received or waiting to be read, in MiB; past it, 503 before reading.
    upload_memory_mib: int = 256
    request_timeout_s: float = 20.0  # a request's headers and body arrive within this, else 408
    idle_timeout_s: float = 5.0  # a keep-alive connection with no request for this long is closed
    max_connections: int = 1024  # open at once; past it, 503
    collect_limit: int = 1000  # drawings saved per class with --collect; past it, 507
    # With --collect, Teach mixes the dataset from data_dir into its runs and writes them to checkpoint_dir.
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    checkpoint_dir: Path = Path(DEFAULT_CHECKPOINT_DIR)

    @property
    def loopback_only(self) -> bool:
        """Reachable from this machine alone."""
        return self.host in ("127.0.0.1", "localhost", "::1")
