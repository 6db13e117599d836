"""Assemble the sandbox: Gate, the Payment Page, the customer's bKash app and the admin API in one
Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .admin_api import AdminApi
from .api import GateApi
from .config import MonetixSandboxConfig
from .customer_api import CustomerApi
from .page import PaymentPage
from .state import MonetixSandbox


def create_app(config: MonetixSandboxConfig | None = None, *, clock: Callable[[], float] = time.time,
               http: httpx.AsyncClient | None = None) -> Starlette:
    """A fresh sandbox with its state in memory (``app.state.sandbox``).

    ``clock`` drives every timestamp, the clarification deadline and the early-status check, so tests
    can move time; callback retries wait in real (event-loop) time. ``http`` delivers the callbacks
    (e.g. one with ASGI mounts for an in-process merchant); without it the sandbox opens its own.
    """
    config = config or MonetixSandboxConfig()
    sandbox = MonetixSandbox(config, clock, http)

    async def index(request: Request) -> Response:
        return JSONResponse({"service": "Monetix (ECOMMPAY) bKash sandbox",
                             "gate": [config.sale_path, "/v2/payment/clarification", config.refund_path,
                                      "/v2/payment/status"],
                             "payment_page": "/payment?...&signature=...",
                             "customer": "/sandbox/customer/pay",
                             "admin": "/admin/payments, /admin/ledger, /admin/stats, /admin/faults"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Served (uvicorn): time-outs fire without waiting for the next request. In-process tests
        # (ASGITransport) have no lifespan and rely on the lazy check every request makes.
        async def tick() -> None:
            while True:
                await asyncio.sleep(config.expiry_check_interval_seconds)
                sandbox.expire_due()

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            await sandbox.outbox.aclose()

    routes = [Route("/", index, methods=["GET"]), *GateApi(sandbox).routes(), *PaymentPage(sandbox).routes(),
              *CustomerApi(sandbox).routes(), *AdminApi(sandbox).routes()]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
