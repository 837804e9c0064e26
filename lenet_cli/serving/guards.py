"""Who may talk to `lenet serve` and how every error is answered: Host and Origin checks (no other site,
and no DNS-rebound name, may drive the server), a byte budget for the bodies being received, and one JSON
shape for every error (a 4xx or 503 with {"error": ...}; an unexpected error is a 500 that names it,
never a traceback)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lenet_cli.core.reading import MiB
from lenet_cli.serving.options import ServeOptions
from lenet_cli.serving.uploads import MAX_BODY_BYTES, ClientError
from lenet_cli.serving.workers import ReadFailed

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def install_guards(app: FastAPI, options: ServeOptions) -> None:
    """The Admission middleware and the answers to every error."""
    own_hosts = {f"{name}:{options.port}" for name in (*LOOPBACK_NAMES, options.host)}
    app.add_middleware(
        Admission,
        own_hosts=own_hosts if options.loopback_only else None,
        port=options.port,
        budget=options.upload_memory_mib * MiB,
    )

    @app.exception_handler(ClientError)
    async def client_error(_request: Request, error: ClientError) -> JSONResponse:
        return error_response(error.status, str(error), error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return error_response(
            error.status_code, str(error.detail).lower() if error.status_code == 404 else str(error.detail)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return error_response(422, f"{'.'.join(map(str, first['loc'][1:]))}: {first['msg']}")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        kind = error.kind if isinstance(error, ReadFailed) else type(error).__name__
        return error_response(500, f"unexpected {kind}: {error}")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await error_response(403, refusal)(scope, receive, send)
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

    def _refusal(self, scope: dict[str, Any], headers: dict[bytes, bytes]) -> str | None:
        """Why a request's Host or Origin is refused, or None."""
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin")
        if self.own_hosts is not None and host not in self.own_hosts:
            return f"requests for host {host or '(none)'} are refused; use http://127.0.0.1:{self.port}/"
        if origin is not None and origin.decode("latin-1") != f"{scope['scheme']}://{host}":
            return f"requests from {origin.decode('latin-1')} are refused: only this server's own page may call it"
        return None

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
        return error_response(503, self._busy_message(), {"Retry-After": "1"})
