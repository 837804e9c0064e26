"""How `lenet serve` treats a connection: uvicorn's httptools protocol, with the limits a server facing
real clients needs and uvicorn does not have.

- A request's headers and body must arrive within `request_timeout_s` of its first byte (of the
  connection, for the first request), plus a second for every MIN_BODY_RATE bytes of body received (a
  large upload on a slow link is not cut off; a body that trickles is): else 408 if nothing was answered
  yet, and the connection closes. A slow client holds a file descriptor; the process has a finite number.
- At most `max_connections` are open. At the limit, a new connection takes the place of the one that has
  waited longest without a request in progress (a header still trickling in, or an idle keep-alive), so
  clients that hold connections open cannot lock new ones out; when every connection has a request in
  progress, the new one is answered 503 at once and closed. Refused connections stand outside the cap, so
  they are held briefly (REFUSED_LINGER_S, at most MAX_REFUSED_LINGERING at once; the rest are closed as
  soon as the answer is written): a flood of them never holds the process's file descriptors.
- A refusal is readable. A client that sends its body without waiting for `100 Continue` (Python's
  urllib, requests and httpx do) is still writing when a 413 or 503 is answered; closing then, with its
  bytes unread, makes the kernel reset the connection, and the client sees `Connection reset by peer`
  instead of the answer. As nginx's lingering close does, the server first shuts its side for writing
  (the answer is all there is) and reads and discards what is still coming, at most `linger_bytes` and
  `linger_s` seconds, before it closes.

Idle keep-alive connections close after uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SWEEP_PERIOD_S = 1.0  # how often the time limits are checked: they hold to within this
MIN_BODY_RATE = 1024  # bytes a second: a body arriving at least this fast is never cut off
# After a refusal, read and drop at most this much of the request, for at most this long, before closing
# (nginx's lingering_time is 30 s): four bodies at the largest size accepted.
LINGER_BYTES = 64 * 2**20
LINGER_S = 30.0
# A connection refused at the cap lingers only this long and this many at once: enough for a client still
# sending a small request to read its 503 rather than a reset.
REFUSED_LINGER_S = 1.0
MAX_REFUSED_LINGERING = 64
REFUSED_LINGER_BYTES = 64 * 2**10


@dataclass(frozen=True)
class ConnectionLimits:
    request_timeout_s: float  # headers and body of one request arrive within this
    max_connections: int  # open at once; past it, 503
    linger_bytes: int = LINGER_BYTES
    linger_s: float = LINGER_S


def protocol_with(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's `http=` class for a server with these limits."""
    attributes = {"limits": limits, "sweeping": {}, "refused_lingering": [0]}
    return type("LimitedConnection", (LimitedConnection,), attributes)


def error_response(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP response with {"error": message}, for answers written outside the app."""
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}connection: close\r\n\r\n"
    ).encode() + body


class LimitedConnection(HttpToolsProtocol):
    """One client connection (see the module's docstring); `protocol_with` sets the limits."""

    limits: ConnectionLimits
    sweeping: dict[asyncio.AbstractEventLoop, asyncio.Task[None]]  # the time limits' checker, per loop
    refused_lingering: list[int]  # [refused connections lingering now], the server's one count

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections and not self._make_room():
            transport.set_protocol(_Refused(transport, self.limits, self.refused_lingering))
            return
        super().connection_made(transport)
        self.began, self.receiving = self.loop.time(), True  # the first request is on its way
        self.lingering_since: float | None = None
        self.received = self.discarded = 0
        self.cycle_transport = _LingeringClose(self)
        if self.loop not in self.sweeping:
            self.sweeping[self.loop] = self.loop.create_task(_sweep(self.connections, self.limits))

    def on_message_begin(self) -> None:
        self.began, self.receiving, self.received = self.loop.time(), True, 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = self.cycle_transport  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        self.received += len(body)
        if self.cycle.response_complete:  # answered already: what still comes is read and dropped
            self.discarded += len(body)
            if self.discarded > self.limits.linger_bytes:
                self.transport.close()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.receiving, self.discarded = False, 0
        if self.lingering_since is not None:
            self.transport.close()
            return
        super().on_message_complete()

    def close_when_read(self) -> None:
        """Close, after reading what the client is still sending of this request (a lingering close)."""
        if not self.receiving or self.transport.is_closing():
            self.transport.close()
            return
        self.lingering_since = self.loop.time()
        try:
            self.transport.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            self.transport.close()
            return
        self.flow.resume_reading()

    def check_time(self, now: float) -> None:
        """Close a connection past its time limit: lingering too long, or a request too slow to arrive."""
        if self.transport.is_closing():
            return
        if self.lingering_since is not None:
            if now - self.lingering_since > self.limits.linger_s:
                self.transport.close()
            return
        if (
            self.receiving
            and now - self.began > self.limits.request_timeout_s + self.received / MIN_BODY_RATE
        ):
            self.cut_off()

    def waiting_for_a_request(self) -> bool:
        """No request of this connection is in the app: its header is still coming, or it is idle."""
        return self.cycle is None or self.cycle.response_complete

    def cut_off(self, why: str = "") -> None:
        """Close now: 408 first if the request in progress has had no answer."""
        cycle = self.cycle if self.cycle is not None and self.cycle.scope is self.scope else None
        if self.receiving and (cycle is None or not cycle.response_started):
            why = why or f"the request did not arrive within {self.limits.request_timeout_s:g} s"
            self.transport.write(error_response(408, "Request Timeout", why))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's reads end and its answer goes nowhere
            cycle.message_event.set()
        self.transport.close()

    def _make_room(self) -> bool:
        """At the limit: close the connection that has waited longest without a request in progress."""
        waiting = (
            connection
            for connection in self.connections
            if isinstance(connection, LimitedConnection)
            and not connection.transport.is_closing()
            and connection.waiting_for_a_request()
        )
        oldest = min(waiting, key=lambda connection: connection.began, default=None)
        if oldest is None:
            return False
        oldest.cut_off("the request was still arriving when the server, at its connection limit, needed room")
        return True


class _LingeringClose:
    """The transport as a request's cycle sees it: closing it waits for the rest of the request."""

    def __init__(self, connection: LimitedConnection):
        self.connection, self.transport = connection, connection.transport

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.connection.close_when_read()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _Refused(asyncio.Protocol):
    """A connection past the limit: answered 503 at once, then closed after a short lingering read (at
    most REFUSED_LINGER_S and REFUSED_LINGER_BYTES; at once when MAX_REFUSED_LINGERING already linger)."""

    def __init__(self, transport: asyncio.Transport, limits: ConnectionLimits, lingering: list[int]):
        self.transport, self.lingering, self.discarded, self.timer = transport, lingering, 0, None
        message = f"the server has {limits.max_connections} connections open, its limit; try again shortly"
        transport.write(error_response(503, "Service Unavailable", message, "retry-after: 1\r\n"))
        if lingering[0] >= MAX_REFUSED_LINGERING:
            transport.close()  # the answer is still written before the socket closes
            return
        try:
            transport.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            transport.close()
            return
        lingering[0] += 1
        self.timer = asyncio.get_running_loop().call_later(REFUSED_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        self.discarded += len(data)  # the request is not read: its answer is written already
        if self.discarded > REFUSED_LINGER_BYTES:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.lingering[0] -= 1


async def _sweep(connections: set[Any], limits: ConnectionLimits) -> None:
    """Every SWEEP_PERIOD_S, close the connections past a time limit (one timer for all of them, so a
    request costs no timer of its own)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SWEEP_PERIOD_S)
        now = loop.time()
        for connection in list(connections):
            if isinstance(connection, LimitedConnection):
                connection.check_time(now)
