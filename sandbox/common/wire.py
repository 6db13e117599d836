"""Answers as they leave either sandbox when a request fault asks for them broken, and the commit
rule that decides whether the request was applied first. What a provider's own answers and error
bodies look like stays in its sandbox's wire.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from .faults import DELAY_AFTER_COMMIT, DROP_CONNECTION, ERROR_CODE, HTTP_ERROR, Fault


class SimulatedConnectionDrop(httpx.RemoteProtocolError):
    """Raised after a partial response so the server aborts the connection.

    It subclasses httpx's error so that a client talking to the app in-process (httpx.ASGITransport
    re-raises app exceptions) sees the same exception class as one talking over a real socket, where
    h11 reports the short body as a RemoteProtocolError.
    """


class DropConnectionResponse(Response):
    """Response start with a Content-Length, part of the body, then an abort: uvicorn closes the
    TCP connection and the client gets no complete answer."""

    def __init__(self, full_body: bytes) -> None:
        super().__init__()
        self.full_body = full_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.full_body)).encode())]})
        await send({"type": "http.response.body", "body": self.full_body[: len(self.full_body) // 2],
                    "more_body": True})
        # The Monetix sandbox borrowed this from the bKash one; the text stays what in-process clients
        # of both have always seen.
        raise SimulatedConnectionDrop("bKash sandbox fault: connection dropped mid-response")


async def json_object(request: Request, parse: Callable[[bytes], Any] = json.loads) -> dict | None:
    """The body as a JSON object; None for an empty body, anything ``parse`` refuses, or another
    JSON value."""
    try:
        body = parse(await request.body() or b"null")
    except (ValueError, RecursionError):  # deep nesting exhausts the recursive parser: not a body either
        return None
    return body if isinstance(body, dict) else None


def upstream_failure(status: int) -> HTMLResponse:
    # A load balancer's page, deliberately not a provider's body: the client must not parse it as one.
    return HTMLResponse(f"<html><head><title>{status} Service Unavailable</title></head><body>"
                        f"<center><h1>{status} Service Unavailable</h1></center></body></html>",
                        status_code=status)


def failure_before_commit(fault: Fault, dropped_body: bytes) -> Response:
    """The request is not applied; its answer is cut short (half of ``dropped_body``) or a 5xx page."""
    if fault.kind == DROP_CONNECTION:
        return DropConnectionResponse(dropped_body)
    return upstream_failure(fault.spec.status)


async def failure_after_commit(fault: Fault, response: Response) -> Response:
    """The request has been applied; now lose, break or delay its answer."""
    if fault.kind == DELAY_AFTER_COMMIT:
        await asyncio.sleep(fault.spec.delay_seconds)
        return response
    if fault.kind == DROP_CONNECTION:
        return DropConnectionResponse(bytes(response.body))
    if fault.kind == HTTP_ERROR:
        return upstream_failure(fault.spec.status)
    return response


async def under_fault(fault: Fault | None, apply: Callable[[], Response],
                      refuse: Callable[[str | None, str | None], Response],
                      dropped_body: bytes) -> Response:
    """Answer a request under ``fault``, the request fault the sandbox took for it (None: none):
    error_code refuses with the fault's code, without applying; otherwise ``commit`` says whether
    ``apply`` runs before the answer breaks."""
    if fault is not None and fault.kind == ERROR_CODE:
        return refuse(fault.spec.code, fault.spec.message)
    if fault is not None and not fault.spec.commit:
        return failure_before_commit(fault, dropped_body)
    response = apply()
    return response if fault is None else await failure_after_commit(fault, response)
