"""The sandbox's own JSON API for tests: inspect payments, callbacks and the ledger, inject faults,
reset; and, for reconciliation tests, make Monetix disagree with the merchant after the fact:
change a payment's status or the amount paid, forget it. Not part of Monetix; nothing here exists
on the real platform."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.admin_api import CommonAdminApi

from . import codes
from .faults import FaultSpec
from .model import Payment, PaymentStatus
from .state import MonetixSandbox, parse_project_id


class StatusChange(BaseModel):
    """The body of POST /admin/payments/{payment_id}/status: what the status request reports from
    now on, e.g. ``{"status": "decline", "code": "20000"}``; no callback is sent."""

    model_config = ConfigDict(extra="forbid")

    status: PaymentStatus
    code: str | None = None  # default: "0" for success, 20000 General decline otherwise


class PaidAmountChange(BaseModel):
    """The body of POST /admin/payments/{payment_id}/paid-amount: poisha, e.g. ``{"amount": 90000}``."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0)


class AdminApi:
    def __init__(self, sandbox: MonetixSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/admin/ledger", self.ledger, methods=["GET"]),
                Route("/admin/payments", self.payments, methods=["GET"]),
                Route("/admin/payments/{project_id:int}/{payment_id}", self.payment, methods=["GET"]),
                # The default project's payments, without naming it.
                Route("/admin/payments/{payment_id}", self.payment, methods=["GET"]),
                # After the fact (reconciliation tests); the default project unless ?project_id=.
                Route("/admin/payments/{payment_id}", self.forget, methods=["DELETE"]),
                Route("/admin/payments/{payment_id}/status", self.change_status, methods=["POST"]),
                Route("/admin/payments/{payment_id}/paid-amount", self.change_paid_amount,
                      methods=["POST"]),
                Route("/admin/stats", self.stats, methods=["GET"]),
                # Reset and faults: the same for both sandboxes.
                *CommonAdminApi(self.sandbox, FaultSpec).routes()]

    async def ledger(self, request: Request) -> Response:
        self.sandbox.expire_due()
        q = request.query_params
        project_id = parse_project_id(q.get("project_id")) if q.get("project_id") else None
        return JSONResponse(self.sandbox.ledger_view(project_id, q.get("payment_id")))

    async def payments(self, request: Request) -> Response:
        self.sandbox.expire_due()
        return JSONResponse([self.sandbox.payment_view(p) for p in self.sandbox.payments.values()])

    async def payment(self, request: Request) -> Response:
        self.sandbox.expire_due()
        project_id = request.path_params.get("project_id", self.sandbox.config.project_id)
        payment_id = request.path_params["payment_id"]
        p = self.sandbox.find(project_id, payment_id)
        if p is None:
            return JSONResponse({"error": f"no payment {payment_id} in project {project_id} in the sandbox"},
                                status_code=404)
        return JSONResponse(self.sandbox.payment_view(p))

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.stats())

    async def change_status(self, request: Request) -> Response:
        p = self._target(request)
        if p is None:
            return _unknown(request)
        try:
            change = StatusChange.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return _invalid("invalid status change", error)
        code = change.code or (codes.SUCCESS if change.status is PaymentStatus.SUCCESS else "20000")
        p.status, p.code, p.message = change.status, code, codes.message(code)
        p.updated_at = self.sandbox.clock()
        return JSONResponse(self.sandbox.payment_view(p))

    async def change_paid_amount(self, request: Request) -> Response:
        p = self._target(request)
        if p is None:
            return _unknown(request)
        try:
            change = PaidAmountChange.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return _invalid("invalid paid amount", error)
        if not p.status.paid:
            return JSONResponse({"error": f"payment {p.payment_id} is {p.status.value}: nothing "
                                          "was paid"}, status_code=409)
        p.paid_amount, p.updated_at = change.amount, self.sandbox.clock()
        return JSONResponse(self.sandbox.payment_view(p))

    async def forget(self, request: Request) -> Response:
        """The status request answers 3061 for the payment from now on; the ledger keeps it."""
        p = self._target(request)
        if p is None:
            return _unknown(request)
        del self.sandbox.payments[(p.project_id, p.payment_id)]
        return JSONResponse({"forgotten": p.payment_id, "project_id": p.project_id})

    def _target(self, request: Request) -> Payment | None:
        raw = request.query_params.get("project_id")
        project_id = parse_project_id(raw) if raw else self.sandbox.config.project_id
        return self.sandbox.find(project_id, request.path_params["payment_id"])


def _unknown(request: Request) -> JSONResponse:
    return JSONResponse({"error": f"no payment {request.path_params['payment_id']} in the sandbox"},
                        status_code=404)


def _invalid(what: str, error: ValidationError) -> JSONResponse:
    return JSONResponse({"error": what, "detail": error.errors(
        include_url=False, include_context=False, include_input=False)}, status_code=422)
