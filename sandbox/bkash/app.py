"""Assemble the sandbox: bKash's API, the hosted page and the admin API in one Starlette app."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .admin_api import AdminApi
from .api import BkashApi
from .config import BkashSandboxConfig
from .page import HostedPage
from .state import BkashSandbox


def create_app(config: BkashSandboxConfig | None = None, *,
               clock: Callable[[], float] = time.time) -> Starlette:
    """A fresh sandbox with its state in memory (``app.state.sandbox``). ``clock`` drives token
    expiry, rate limits, authorization holds and every timestamp, so tests can move time."""
    config = config or BkashSandboxConfig()
    sandbox = BkashSandbox(config, clock)
    api_prefix = f"/{config.api_version}/"

    async def not_routed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(api_prefix):
            # AWS API Gateway's answer for a path or method it has no route for [INF: standard
            # API Gateway behaviour, not seen in a bKash log]; it catches typos in client paths.
            return JSONResponse({"message": "Missing Authentication Token"}, status_code=403)
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)

    async def index(request: Request) -> Response:
        return JSONResponse({"service": "bKash Tokenized Checkout sandbox",
                             "api_base": f"{str(request.base_url).rstrip('/')}/{config.api_version}",
                             "admin": "/admin/payments, /admin/ledger, /admin/calls, /admin/stats, /admin/faults"})

    routes = [Route("/", index, methods=["GET"]), *BkashApi(sandbox).routes(),
              *HostedPage(sandbox).routes(), *AdminApi(sandbox).routes()]
    app = Starlette(routes=routes, exception_handlers={404: not_routed, 405: not_routed})
    app.state.sandbox = sandbox
    return app
