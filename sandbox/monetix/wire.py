"""Gate's answers as they leave the sandbox. The broken ones fault injection asks for (a connection
cut mid-body, a load balancer's error page, a late answer) are both sandboxes'
(sandbox/common/wire.py), so both fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from providers.monetix_signing import loads
from sandbox.common.wire import json_object, under_fault

from .codes import GateError, message
from .faults import REQUEST_KINDS, Operation, Target
from .state import MonetixSandbox

__all__ = ["answer", "error_body", "error_response", "read_json"]

# What a connection dropped before the request was applied cuts in half: the shape of Gate's
# "accepted for processing" (§3.3), so the truncated answer looks like the start of a real one.
DROPPED_BODY = b'{"status": "success"}'


async def read_json(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object, numbers kept as written so the signature verifies (§2.2)."""
    return await json_object(request, parse=loads)


def error_body(error: GateError, *, project_id: Any, payment_id: Any, request_id: str) -> dict[str, Any]:
    # §3.3 "exact error shape [I]": status, code, message, errors[], echoing the ids.
    return {"status": "error", "code": error.code, "message": message(error.code),
            "errors": error.errors(), "project_id": project_id, "payment_id": payment_id,
            "request_id": request_id}


def error_response(error: GateError, *, project_id: Any, payment_id: Any, request_id: str) -> JSONResponse:
    # §3.3: invalid requests come back as HTTP 400.
    return JSONResponse(error_body(error, project_id=project_id, payment_id=payment_id, request_id=request_id),
                        status_code=400)


async def answer(sandbox: MonetixSandbox, operation: Operation, target: Target,
                 apply: Callable[[], Response], refuse: Callable[[GateError], Response]) -> Response:
    """Run ``apply`` under the oldest matching request fault (see faults.py)."""

    def injected(code: str | None, message: str | None = None) -> Response:
        return refuse(GateError(code or "3060", detail=message or "injected by a sandbox fault"))

    fault = sandbox.faults.take(operation, target, kinds=REQUEST_KINDS)
    return await under_fault(fault, apply, injected, DROPPED_BODY)
