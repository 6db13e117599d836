"""The sandbox's own JSON API for tests: inspect payments and the ledger, inject faults, reset.
Not part of bKash; nothing here exists on the real service."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
                Route("/admin/reset", self.reset, methods=["POST"]),
                Route("/admin/faults", self.add_fault, methods=["POST"]),
                Route("/admin/faults", self.faults, methods=["GET"]),
                Route("/admin/faults", self.clear_faults, methods=["DELETE"])]

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

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.tokens.stats())

    async def reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return JSONResponse({"reset": True})

    async def add_fault(self, request: Request) -> Response:
        try:
            spec = FaultSpec.model_validate_json(await request.body())
        except ValidationError as error:
            # Without the input: a body that is not JSON is echoed as bytes, which JSON cannot carry.
            return JSONResponse({"error": "invalid fault", "detail": error.errors(
                include_url=False, include_context=False, include_input=False)}, status_code=422)
        return JSONResponse(self.sandbox.faults.add(spec).to_dict(), status_code=201)

    async def faults(self, request: Request) -> Response:
        return JSONResponse([f.to_dict() for f in self.sandbox.faults.faults])

    async def clear_faults(self, request: Request) -> Response:
        cleared = len(self.sandbox.faults.faults)
        self.sandbox.faults.clear()
        return JSONResponse({"cleared": cleared})
