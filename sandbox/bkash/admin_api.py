"""The sandbox's own JSON API for tests: inspect payments and the ledger, inject faults, reset.
Not part of bKash; nothing here exists on the real service."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.admin_api import CommonAdminApi

from .faults import FaultSpec
from .state import BkashSandbox


class AdminApi:
    def __init__(self, sandbox: BkashSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/admin/ledger", self.ledger, methods=["GET"]),
                Route("/admin/payments", self.payments, methods=["GET"]),
                Route("/admin/payments/{payment_id}", self.payment, methods=["GET"]),
                Route("/admin/stats", self.stats, methods=["GET"]),
                Route("/admin/calls", self.calls, methods=["GET"]),
                # Reset and faults: the same for both sandboxes.
                *CommonAdminApi(self.sandbox, FaultSpec).routes()]

    async def ledger(self, request: Request) -> Response:
        q = request.query_params
        return JSONResponse(self.sandbox.ledger_view(q.get("paymentID"), q.get("invoice")))

    async def payments(self, request: Request) -> Response:
        invoice = request.query_params.get("invoice")
        self.sandbox.expire_holds()
        found = (self.sandbox.by_invoice(invoice) if invoice is not None
                 else list(self.sandbox.payments.values()))
        return JSONResponse([self.sandbox.payment_view(p) for p in found])

    async def payment(self, request: Request) -> Response:
        p = self.sandbox.find(request.path_params["payment_id"])
        if p is None:
            return JSONResponse({"error": f"no payment {request.path_params['payment_id']} in the sandbox"},
                                status_code=404)
        return JSONResponse(self.sandbox.payment_view(p))

    async def calls(self, request: Request) -> Response:
        q = request.query_params
        return JSONResponse(self.sandbox.calls.view(q.get("paymentID"), q.get("invoice")))

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.tokens.stats())
