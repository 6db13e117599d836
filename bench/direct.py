"""The provider alone: the same calls the activities make, with the project's clients and no
Temporal, and a bare merchant receiver in place of the endpoint (it executes the bKash payment when
the browser returns, and verifies Monetix's signed callbacks, as the endpoint does, but keeps the
outcome in memory instead of handing it to a workflow)."""

from __future__ import annotations

import asyncio
import html
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from providers.bkash import BkashClient
from providers.bkash_errors import BkashError
from providers.monetix import MonetixStatus
from providers.monetix_signing import loads, verify


class DirectReceiver:
    def __init__(self, bkash: BkashClient, monetix_secret: str) -> None:
        self._bkash = bkash
        self._secret = monetix_secret
        self._stages: dict[str, str] = {}
        self._callbacks: dict[str, list[MonetixStatus]] = defaultdict(list)
        self._arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/bkash/return/{invoice}", self._bkash_return, methods=["GET"]),
            Route("/bkash/result/{invoice}", self._bkash_result, methods=["GET"]),
            Route("/monetix/callback", self._monetix_callback, methods=["POST"]),
        ])

    async def _bkash_return(self, request: Request) -> Response:
        invoice = request.path_params["invoice"]
        payment_id = request.query_params.get("paymentID", "")
        stage = "CANCELLED"
        if request.query_params.get("status") == "success":
            try:
                status = await self._bkash.execute_payment(payment_id)
                stage = "AUTHORIZED" if status.transaction_status == "Authorized" else "FAILED"
            except BkashError as err:
                stage = f"FAILED ({err.kind})"
        self._stages[invoice] = stage
        return RedirectResponse(f"/bkash/result/{quote(invoice, safe='')}", status_code=303)

    async def _bkash_result(self, request: Request) -> Response:
        stage = self._stages.get(request.path_params["invoice"], "UNKNOWN")
        return HTMLResponse(f"<!doctype html><p data-stage='{html.escape(stage)}'>{html.escape(stage)}</p>")

    async def _monetix_callback(self, request: Request) -> Response:
        data = loads(await request.body())
        if not isinstance(data, dict) or not verify(data, self._secret):
            return PlainTextResponse("bad or missing signature", status_code=400)
        status = MonetixStatus.from_body(data, signature_verified=True)
        self._callbacks[status.payment_id].append(status)
        self._arrived[status.payment_id].set()
        return PlainTextResponse("OK")

    async def monetix_callback(self, payment_id: str,
                               wanted: Callable[[MonetixStatus], bool]) -> MonetixStatus:
        """The first callback for ``payment_id`` that ``wanted`` accepts (waiting for it)."""
        while True:
            for status in self._callbacks[payment_id]:
                if wanted(status):
                    return status
            event = self._arrived[payment_id]
            event.clear()
            await event.wait()
