"""`--collect DIR`: the page's drawings saved as DIR/<label>/<server-chosen name>.png (ImageFolder layout,
for `lenet evaluate --images` and `lenet train --images`), at most `limit` per class, each at most
MAX_DRAWING_BYTES (the disk it may take is bounded). Without it, nothing is written."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from lenet_cli.core.errors import LenetError
from lenet_cli.core.reading import MiB
from lenet_cli.core.writing import atomic_write, make_folder
from lenet_cli.serving.uploads import ClientError, read_body

MAX_DRAWING_BYTES = 1 * MiB  # a drawing the page saves with --collect (its canvas PNG is a few KiB)


def add_collect_routes(app: FastAPI, folder: Path | None, limit: int) -> None:
    """GET /collect (what is saved, per class) and POST /collect?label=N (save the body)."""

    @app.get("/collect")
    def collected() -> dict[str, Any]:
        return {
            "enabled": folder is not None,
            "folder": str(folder) if folder else None,
            "counts": collected_counts(folder, len(app.state.names)) if folder else {},
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
        saved = collected_counts(folder, len(app.state.names))
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
        return {
            "saved": str(save_drawing(folder, label, body).relative_to(folder)),
            "counts": collected_counts(folder, len(app.state.names)),
        }


def collected_counts(folder: Path, classes: int) -> dict[str, int]:
    """How many drawings of each class `folder` holds, by class ("0", "1", ...)."""
    return {
        name: sum(1 for _ in (folder / name).glob("*.png")) if (folder / name).is_dir() else 0
        for name in map(str, range(classes))
    }


def save_drawing(folder: Path, label: int, body: bytes | bytearray) -> Path:
    """Write the drawing whole under a name the server chooses; 507 if the disk refuses it."""
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.png"
    target = folder / str(label) / name
    try:
        atomic_write(make_folder(target.parent) / target.name, lambda handle: handle.write(body), "drawing")
    except LenetError as error:  # the folder or the file cannot be written: the disk, not the request
        raise ClientError(507, str(error)) from None
    return target
