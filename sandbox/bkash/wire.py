"""bKash's answers as they leave the sandbox. The broken ones fault injection asks for (a dropped
connection, a load balancer's 5xx page, a late answer) are both sandboxes' (sandbox/common/wire.py)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from .codes import BkashError, GatewayError

# What a connection dropped before the operation was applied cuts in half: a bKash success envelope,
# so the truncated answer looks like the start of a real one.
DROPPED_BODY = b'{"statusCode":"0000","statusMessage":"Successful"}'


def bkash_error(error: BkashError, envelope: str = "statusCode") -> JSONResponse:
    # Business errors are HTTP 200 (§2); the envelope is configurable for capture/void (§8.3).
    if envelope == "errorCode":
        return JSONResponse({"errorCode": error.code, "errorMessage": error.message})
    return JSONResponse({"statusCode": error.code, "statusMessage": error.message})


def gateway_error(error: GatewayError) -> JSONResponse:
    return JSONResponse({"message": error.message}, status_code=error.status)
