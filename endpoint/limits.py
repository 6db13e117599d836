"""Size and time bounds on every request the endpoint takes, enforced before a route reads anything.

``RequestLimits`` (ASGI middleware, wired in endpoint/app.py, so it covers every route): path and
query string (414), request headers (431), a declared body over the limit (413) and a body on a
GET (400) are refused before the route runs. ``read_body`` reads a POST body as a stream and stops
at the limit (413) or when the sender is too slow (408), without buffering more than the limit.
The server in front adds its own: ``server_settings`` for uvicorn (a request head's size and
time, connections, keep-alive), nginx in production (README, "Serving the endpoint in production").
"""

from __future__ import annotations

import asyncio
import functools
import logging

from starlette.requests import ClientDisconnect, Request

from endpoint.common import refused

# A Monetix callback is 0.2-2 KB (every documented callback, §4.1; the sandbox's are ~1 KB); 64 KiB
# is 30 times the largest, and what the endpoint may hold in memory per request.
MAX_BODY_BYTES = 64 * 1024
# A bKash return is /bkash/return/bkash-<invoice ≤ 255>?paymentID=…&status=…&signature=…
# &apiVersion=… (≈ 400 bytes); browsers and proxies allow ~8 KB. The path names a workflow id
# (Temporal allows 1000 characters, percent-encoded up to 3-4 bytes each outside ASCII): 4 KiB.
# The query string carries four short bKash parameters (≈ 150 bytes): 2 KiB.
MAX_PATH_BYTES = 4096
MAX_QUERY_BYTES = 2048
# Browsers send 0.5-2 KB of headers, more with a merchant domain's cookies; uvicorn's h11 parser
# stops the whole request head at 16 KiB (server_settings below): the same bound for any server.
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 64
# Monetix sends a callback in one write; a body still arriving after this is a slow-sending client
# holding a connection and a task.
BODY_READ_TIMEOUT = 10.0


class BodyRefused(Exception):
    """A body not read to the end: ``status`` is the answer, ``reason`` a fixed phrase to count."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def kind_of(path: str) -> str:
    """The refusal log's kind for a request path."""
    if path.startswith("/monetix/"):
        return "monetix callbacks"
    if path.startswith("/bkash/"):
        return "bkash returns"
    return "requests"


async def read_body(request: Request, *, limit: int = MAX_BODY_BYTES,
                    timeout: float | None = None) -> bytes:
    """The request body, read as it arrives; stops at ``limit`` bytes (413) or after ``timeout``
    seconds (408, default BODY_READ_TIMEOUT) without reading on, and turns a client gone mid-body
    into :class:`BodyRefused` (nobody reads that answer, and nothing logs a traceback)."""
    timeout = BODY_READ_TIMEOUT if timeout is None else timeout
    declared = request.headers.get("content-length")
    if declared is not None:
        length = declared_length(declared.encode("latin-1"))
        if length is None:
            raise BodyRefused(400, "bad content-length", "Content-Length is not a number")
        if length > limit:
            raise BodyRefused(413, "too large", f"body over {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit:
                    raise BodyRefused(413, "too large", f"body over {limit} bytes")
                body += chunk
    except TimeoutError:
        raise BodyRefused(408, "body too slow", f"body not received within {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyRefused(400, "client disconnected", "client disconnected mid-body") from None
    return bytes(body)


def declared_length(value: bytes) -> int | None:
    """A Content-Length value as a number (None: not one); ASCII digits only, and any length of
    more than 18 digits counts as "very large" without asking int() to parse thousands of them."""
    if not value or not value.isdigit():  # bytes.isdigit: ASCII digits only
        return None
    return int(value) if len(value) <= 18 else 10**18


async def plain_response(send, status: int, text: str) -> None:
    """A small text answer that also closes the connection: what is left of the request is not read."""
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode("ascii")),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: refuses what no route of the endpoint needs, before the route runs."""

    def __init__(self, app, *, max_path: int = MAX_PATH_BYTES, max_query: int = MAX_QUERY_BYTES,
                 max_header_bytes: int = MAX_HEADER_BYTES, max_headers: int = MAX_HEADERS,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_path, self.max_query = max_path, max_query
        self.max_header_bytes, self.max_headers = max_header_bytes, max_headers
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, reason, text = problem
        refused(kind_of(scope.get("path", "")), reason)
        await plain_response(send, status, text)

    def _problem(self, scope) -> tuple[int, str, str] | None:
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass")
        if len(raw_path) > self.max_path:
            return 414, "path too long", f"request path over {self.max_path} bytes"
        if len(scope.get("query_string", b"")) > self.max_query:
            return 414, "query string too long", f"query string over {self.max_query} bytes"
        headers = scope.get("headers", [])
        if len(headers) > self.max_headers or \
                sum(len(k) + len(v) for k, v in headers) > self.max_header_bytes:
            return 431, "headers too large", (f"request headers over {self.max_headers} fields or "
                                              f"{self.max_header_bytes} bytes")
        declared = None
        chunked = False
        for name, value in headers:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        length = declared_length(declared) if declared is not None else 0
        if length is None:
            return 400, "bad content-length", "Content-Length is not a number"
        if length > self.max_body:
            return 413, "too large", f"body over {self.max_body} bytes"
        if scope.get("method") in ("GET", "HEAD") and (chunked or length > 0):
            # No GET route reads a body; unread, it would stream on into a connection kept alive.
            return 400, "body on a GET", "a GET request carries no body"
        return None


# -- the HTTP server in front of the app (uvicorn) ---------------------------------------------

# A request head (request line and headers) must arrive within this many seconds of the connection
# opening or of the previous answer; uvicorn itself has no such timeout, so a client sending a byte
# a second would hold a connection forever (slowloris).
HEADER_READ_TIMEOUT = 10.0
# Connections plus requests in progress; beyond, uvicorn answers 503 at once instead of queueing.
# A callback holds its request for one Temporal round trip (tens of ms), so 256 is far above what
# Monetix and customers' browsers need, and bounds memory whatever the number of clients.
MAX_CONNECTIONS = 256
# Idle keep-alive connections are closed after this many seconds (uvicorn's default, made explicit).
KEEP_ALIVE_TIMEOUT = 5


@functools.cache
def _head_timeout_protocol():
    # uvicorn's h11 protocol (the one it uses without httptools), plus HEADER_READ_TIMEOUT. Written
    # against uvicorn 0.54 (pinned): it relies on connection_made / handle_events /
    # on_response_complete / connection_lost and on `cycle` being set when a request head is parsed.
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class H11WithHeaderTimeout(H11Protocol):
        header_timeout = HEADER_READ_TIMEOUT
        _head_timer = None
        _waiting_after = None
        _partial_head = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            self._partial_head = self._head_timer is not None
            super().data_received(data)

        def on_response_complete(self) -> None:
            self._arm()  # before super(): a pipelined request it starts disarms the timer
            super().on_response_complete()

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_timer is not None and self.cycle is not self._waiting_after:
                self._disarm()  # a new request head was parsed

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._waiting_after, self._partial_head = self.cycle, False
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                if self._partial_head:  # an idle connection (a browser's preconnect) is no refusal
                    refused("requests", "headers too slow")
                self.transport.close()

    return H11WithHeaderTimeout


def server_settings(**overrides) -> dict:
    """uvicorn.Config keyword arguments that bound what one client can hold (README "Serving it in
    production"): connections, idle keep-alive, the request head's size and time to arrive."""
    settings = {"limit_concurrency": MAX_CONNECTIONS, "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
                # The whole request head (request line and headers), as MAX_HEADER_BYTES.
                "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
                "http": _head_timeout_protocol()}
    settings.update(overrides)
    return settings


class _CountUvicornRefusals(logging.Filter):
    """uvicorn logs a warning per malformed request and per request over limit_concurrency: under
    attack that is a line per request. Count them in the refusal log instead."""

    _REASONS = {"Invalid HTTP request received.": "invalid HTTP",
                "Exceeded concurrency limit.": "over the connection limit"}

    def filter(self, record: logging.LogRecord) -> bool:
        reason = self._REASONS.get(record.msg) if isinstance(record.msg, str) else None
        if reason is None:
            return True
        refused("requests", reason)
        return False


def count_server_refusals() -> None:
    """Install the filter on uvicorn's error log (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _CountUvicornRefusals) for f in logger.filters):
        logger.addFilter(_CountUvicornRefusals())
