"""Responses as they leave the sandbox, including the broken ones fault injection asks for."""

from __future__ import annotations

import asyncio
import json

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .codes import BkashError, GatewayError
from .faults import Fault, FaultKind


class SimulatedConnectionDrop(httpx.RemoteProtocolError):
    """Raised after a partial response so the server aborts the connection.

    It subclasses httpx's error so that a client talking to the app in-process (httpx.ASGITransport
    re-raises app exceptions) sees the same exception class as one talking over a real socket, where
    h11 reports the short body as a RemoteProtocolError.
    """


class DropConnectionResponse(Response):
    """Response start with a Content-Length, part of the body, then an abort: uvicorn closes the
    TCP connection and the client gets no complete answer."""

    def __init__(self, full_body: bytes | None = None) -> None:
        super().__init__()
        self.full_body = full_body or b'{"statusCode":"0000","statusMessage":"Successful"}'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.full_body)).encode())]})
        await send({"type": "http.response.body", "body": self.full_body[: len(self.full_body) // 2],
                    "more_body": True})
        raise SimulatedConnectionDrop("bKash sandbox fault: connection dropped mid-response")


async def json_object(request: Request) -> dict | None:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, RecursionError):  # deep nesting exhausts the recursive parser: not a body either
        return None
    return body if isinstance(body, dict) else None


def bkash_error(error: BkashError, envelope: str = "statusCode") -> JSONResponse:
    # Business errors are HTTP 200 (§2); the envelope is configurable for capture/void (§8.3).
    if envelope == "errorCode":
        return JSONResponse({"errorCode": error.code, "errorMessage": error.message})
    return JSONResponse({"statusCode": error.code, "statusMessage": error.message})


def gateway_error(error: GatewayError) -> JSONResponse:
    return JSONResponse({"message": error.message}, status_code=error.status)


def upstream_failure(status: int) -> HTMLResponse:
    # A load balancer's page, deliberately not a bKash body: the client must not parse it as one.
    return HTMLResponse(f"<html><head><title>{status} Service Unavailable</title></head><body>"
                        f"<center><h1>{status} Service Unavailable</h1></center></body></html>",
                        status_code=status)


def failure_before_commit(fault: Fault) -> Response:
    if fault.kind is FaultKind.DROP_CONNECTION:
        return DropConnectionResponse()
    return upstream_failure(fault.spec.status)


async def failure_after_commit(fault: Fault, response: Response) -> Response:
    """The operation has been applied; now lose, break or delay its answer."""
    if fault.kind is FaultKind.DELAY_AFTER_COMMIT:
        await asyncio.sleep(fault.spec.delay_seconds)
        return response
    if fault.kind is FaultKind.DROP_CONNECTION:
        return DropConnectionResponse(bytes(response.body))
    if fault.kind is FaultKind.HTTP_ERROR:
        return upstream_failure(fault.spec.status)
    return response
