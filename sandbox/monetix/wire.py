"""Answers as they leave the sandbox, including the broken ones fault injection asks for.

The transport-level breakage (a connection cut mid-body, a load balancer's error page) is the bKash
sandbox's, imported rather than copied, so both sandboxes fail the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from providers.monetix_signing import loads
from sandbox.bkash.wire import DropConnectionResponse, SimulatedConnectionDrop, upstream_failure

from .codes import GateError, message
from .faults import Fault, FaultKind, Operation, Target
from .state import MonetixSandbox

__all__ = ["SimulatedConnectionDrop", "answer", "error_body", "read_json"]


async def read_json(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object, numbers kept as written so the signature verifies (§2.2)."""
    try:
        body = loads(await request.body() or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def error_body(error: GateError, *, project_id: Any, payment_id: Any, request_id: str) -> dict[str, Any]:
    # §3.3 "exact error shape [I]": status, code, message, errors[], echoing the ids.
    return {"status": "error", "code": error.code, "message": message(error.code),
            "errors": error.errors(), "project_id": project_id, "payment_id": payment_id,
            "request_id": request_id}


def error_response(error: GateError, *, project_id: Any, payment_id: Any, request_id: str) -> JSONResponse:
    # §3.3: invalid requests come back as HTTP 400.
    return JSONResponse(error_body(error, project_id=project_id, payment_id=payment_id, request_id=request_id),
                        status_code=400)


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data).encode()


async def answer(sandbox: MonetixSandbox, operation: Operation, target: Target,
                 apply: Callable[[], Response], refuse: Callable[[GateError], Response]) -> Response:
    """Run ``apply`` under the oldest matching request fault (see faults.py)."""
    fault = sandbox.faults.take(operation, target)
    if fault is not None and fault.kind is FaultKind.ERROR_CODE:
        return refuse(GateError(fault.spec.code or "3060", detail="injected by a sandbox fault"))
    if fault is not None and not fault.spec.commit:
        return _failure_before_commit(fault)
    response = apply()
    return response if fault is None else await _failure_after_commit(fault, response)


def _failure_before_commit(fault: Fault) -> Response:
    if fault.kind is FaultKind.DROP_CONNECTION:
        return DropConnectionResponse(_json_bytes({"status": "success"}))
    return upstream_failure(fault.spec.status)


async def _failure_after_commit(fault: Fault, response: Response) -> Response:
    """The request has been applied; now lose, break or delay its answer."""
    if fault.kind is FaultKind.DELAY_AFTER_COMMIT:
        await asyncio.sleep(fault.spec.delay_seconds)
        return response
    if fault.kind is FaultKind.DROP_CONNECTION:
        return DropConnectionResponse(bytes(response.body))
    if fault.kind is FaultKind.HTTP_ERROR:
        return upstream_failure(fault.spec.status)
    return response
