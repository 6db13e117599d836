"""The sandbox's own JSON API for tests: inspect payments, refunds and the ledger, inject faults,
age a payment past the refund window, change the refund settings, reset; and, for reconciliation
tests, make bKash disagree with the merchant after the fact: change a payment's status, refund it
outside the API (as the merchant portal would), forget it. Not part of bKash; nothing here exists
on the real service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.admin_api import CommonAdminApi

from .faults import FaultSpec
from .formats import parse_amount
from .state import BkashSandbox, Status

_DAY = 24 * 3600.0


class AgeRequest(BaseModel):
    """The body of POST /admin/payments/{paymentID}/age: how far into the past the payment's
    completion moves, in ``seconds`` or ``days`` (one of the two)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(None, gt=0)
    days: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> AgeRequest:
        if (self.seconds is None) == (self.days is None):
            raise ValueError('give one of "seconds" or "days", e.g. {"days": 16}')
        return self

    @property
    def total_seconds(self) -> float:
        return self.seconds if self.seconds is not None else self.days * _DAY  # type: ignore[operator]


class RefundSettingsUpdate(BaseModel):
    """The body of POST /admin/refund-settings; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: float | None = Field(None, gt=0)
    max_refunds: int | None = Field(None, ge=0)  # 0: no limit


class StatusChange(BaseModel):
    """The body of POST /admin/payments/{paymentID}/status: what bKash reports from now on, e.g.
    ``{"status": "Completed"}`` for a payment the merchant voided."""

    model_config = ConfigDict(extra="forbid")

    status: Status


class OutsideRefund(BaseModel):
    """The body of POST /admin/payments/{paymentID}/outside-refund: a refund made outside the
    merchant's integration (the bKash merchant portal), e.g. ``{"amount": "100.00"}``."""

    model_config = ConfigDict(extra="forbid")

    amount: str
    reason: str = "refunded in the merchant portal"


class AdminApi:
    def __init__(self, sandbox: BkashSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/admin/ledger", self.ledger, methods=["GET"]),
                Route("/admin/payments", self.payments, methods=["GET"]),
                Route("/admin/payments/{payment_id}", self.payment, methods=["GET"]),
                Route("/admin/stats", self.stats, methods=["GET"]),
                Route("/admin/calls", self.calls, methods=["GET"]),
                Route("/admin/refunds", self.refunds, methods=["GET"]),
                Route("/admin/payments/{payment_id}", self.forget, methods=["DELETE"]),
                Route("/admin/payments/{payment_id}/age", self.age, methods=["POST"]),
                Route("/admin/payments/{payment_id}/status", self.change_status, methods=["POST"]),
                Route("/admin/payments/{payment_id}/outside-refund", self.outside_refund,
                      methods=["POST"]),
                Route("/admin/refund-settings", self.refund_settings, methods=["GET"]),
                Route("/admin/refund-settings", self.change_refund_settings, methods=["POST"]),
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

    async def refunds(self, request: Request) -> Response:
        q = request.query_params
        return JSONResponse(self.sandbox.refund_desk.refunds_view(q.get("paymentID"), q.get("invoice")))

    async def age(self, request: Request) -> Response:
        p = self.sandbox.find(request.path_params["payment_id"])
        if p is None:
            return JSONResponse({"error": f"no payment {request.path_params['payment_id']} in the sandbox"},
                                status_code=404)
        try:
            age = AgeRequest.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return _invalid("invalid age", error)
        try:
            self.sandbox.refund_desk.age(p, age.total_seconds)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse(self.sandbox.payment_view(p))

    async def change_status(self, request: Request) -> Response:
        """bKash changes its mind about a payment: no ledger line, no callback, just what search
        and query report from now on (reconciliation must notice)."""
        p = self.sandbox.find(request.path_params["payment_id"])
        if p is None:
            return _unknown(request)
        try:
            change = StatusChange.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return _invalid("invalid status change", error)
        now = self.sandbox.clock()
        p.status, p.updated_at = change.status, now
        if change.status is Status.COMPLETED and p.completed_at is None:
            p.completed_at = now
        return JSONResponse(self.sandbox.payment_view(p))

    async def outside_refund(self, request: Request) -> Response:
        p = self.sandbox.find(request.path_params["payment_id"])
        if p is None:
            return _unknown(request)
        try:
            body = OutsideRefund.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return _invalid("invalid outside refund", error)
        amount = parse_amount(body.amount)
        if amount is None:
            return JSONResponse({"error": f"amount {body.amount!r} is not a BDT amount, e.g. "
                                          "100.00"}, status_code=422)
        try:
            refund = self.sandbox.refund_desk.outside_refund(p, amount[0], body.reason)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse({"refund_trx_id": refund.trx_id, **self.sandbox.payment_view(p)})

    async def forget(self, request: Request) -> Response:
        """bKash no longer knows the payment: search of its trxID answers 2033, its paymentID is
        2002. The ledger and the call log keep what happened."""
        p = self.sandbox.payments.pop(request.path_params["payment_id"], None)
        if p is None:
            return _unknown(request)
        return JSONResponse({"forgotten": p.payment_id, "trx_id": p.trx_id})

    async def refund_settings(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.refund_desk.settings.to_dict())

    async def change_refund_settings(self, request: Request) -> Response:
        try:
            update = RefundSettingsUpdate.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return _invalid("invalid refund settings", error)
        settings = self.sandbox.refund_desk.settings
        for name, value in update.model_dump(exclude_none=True).items():
            setattr(settings, name, value)
        return JSONResponse(settings.to_dict())

    async def calls(self, request: Request) -> Response:
        q = request.query_params
        return JSONResponse(self.sandbox.calls.view(q.get("paymentID"), q.get("invoice")))

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.tokens.stats())


def _unknown(request: Request) -> JSONResponse:
    return JSONResponse({"error": f"no payment {request.path_params['payment_id']} in the sandbox"},
                        status_code=404)


def _invalid(what: str, error: ValidationError) -> JSONResponse:
    return JSONResponse({"error": what, "detail": error.errors(
        include_url=False, include_context=False, include_input=False)}, status_code=422)
