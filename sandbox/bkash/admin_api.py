"""The sandbox's own JSON API for tests: inspect payments, refunds and the ledger, inject faults,
age a payment past the refund window, change the refund settings, reset. Not part of bKash;
nothing here exists on the real service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.admin_api import CommonAdminApi

from .faults import FaultSpec
from .state import BkashSandbox

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
                Route("/admin/payments/{payment_id}/age", self.age, methods=["POST"]),
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


def _invalid(what: str, error: ValidationError) -> JSONResponse:
    return JSONResponse({"error": what, "detail": error.errors(
        include_url=False, include_context=False, include_input=False)}, status_code=422)
