"""Temporal's remote codec endpoints over merchant_client.encryption (production.md §5).

* ``POST /encode`` and ``POST /decode``: a ``temporal.api.common.v1.Payloads`` as protobuf JSON in,
  the same shape out — what the Web UI (``--ui-codec-endpoint``) and the CLI (``--codec-endpoint``)
  send.
* Authentication: ``Authorization: Bearer <token>`` (the CLI's ``--codec-auth "Bearer …"``), or the
  token as the first path segment (``/t/<token>/decode``) for a Web UI that sends no credentials
  (the dev server's UI cannot add a header: its codec endpoint is then a capability URL, shown only
  to people who can open the UI). Anything else: 401, nothing decoded. Compared in constant time.
* CORS for the Web UI's origin(s) only; the preflight needs no token (browsers never send one).
* Bounded: a body over ``max_body_bytes`` is refused (413) before it is parsed.
* Logs never carry a payload, a key or the token.
"""

from __future__ import annotations

import hmac
import logging

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from merchant_client.encryption import AesGcmCodec, EncryptionKeys, UnknownKeyError

log = logging.getLogger("codec_server")
MAX_BODY_BYTES = 4 * 1024 * 1024
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace, Caller-Type, Client-Name, " \
                  "Client-Version"


def create_app(keys: EncryptionKeys, token: str, *, allowed_origins: list[str],
               max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    if len(token) < 24:
        raise ValueError("the codec token must be at least 24 characters")
    codec = AesGcmCodec(keys)
    expected = token.encode()
    origins = {o.rstrip("/") for o in allowed_origins}

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if origin.rstrip("/") not in origins:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600"}

    def authorized(request: Request) -> bool:
        given = request.path_params.get("token")
        if given is None:
            scheme, _, credential = request.headers.get("authorization", "").partition(" ")
            given = credential.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode(), expected)

    def endpoint(operation: str):
        async def handle(request: Request) -> Response:
            headers = cors(request)
            if request.method == "OPTIONS":
                return Response(status_code=204 if headers else 403, headers=headers)
            if not authorized(request):
                log.warning("codec server: %s refused (no valid token)", operation)
                return JSONResponse({"error": "unauthorized"}, status_code=401,
                                    headers={**headers, "WWW-Authenticate": "Bearer"})
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_body_bytes:
                return JSONResponse({"error": "body too large"}, status_code=413, headers=headers)
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes:
                    return JSONResponse({"error": "body too large"}, status_code=413,
                                        headers=headers)
            try:
                payloads = json_format.Parse(body, Payloads())
            except (json_format.ParseError, DecodeError, UnicodeDecodeError, ValueError):
                return JSONResponse({"error": "expected temporal.api.common.v1.Payloads as JSON"},
                                    status_code=400, headers=headers)
            try:
                out = (await codec.encode(payloads.payloads) if operation == "encode"
                       else await codec.decode(payloads.payloads))
            except UnknownKeyError as err:
                return JSONResponse({"error": str(err)}, status_code=422, headers=headers)
            return Response(json_format.MessageToJson(Payloads(payloads=out)),
                            media_type="application/json", headers=headers)

        return handle

    routes = []
    for operation in ("encode", "decode"):
        handler = endpoint(operation)
        routes += [Route(f"/{operation}", handler, methods=["POST", "OPTIONS"]),
                   Route(f"/t/{{token}}/{operation}", handler, methods=["POST", "OPTIONS"])]

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True, "keys": len(codec.key_ids)})

    routes.append(Route("/healthz", health))
    return Starlette(routes=routes)
