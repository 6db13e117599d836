"""The Tokenized Checkout API (reference §2): gateway token check, fault injection, then bKash's
business rules in state.py (refunds: refunds.py). The v2 refund API (§9) is served at the host's
root, where bKash's clients post it (§1: "host has no /v1.2.0-beta"), and under the API version too,
so a client configured with either base reaches it; it takes the same token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.wire import json_object, under_fault

from .codes import BkashError, GatewayError
from .faults import API_KINDS, FaultKind, Operation, Target
from .refunds import V2_REFUND_PATH, V2_REFUND_STATUS_PATH, v2_error_body
from .state import BkashSandbox
from .wire import DROPPED_BODY, bkash_error, gateway_error

_EXPIRE_TOKEN = frozenset({FaultKind.EXPIRE_TOKEN})
# What a connection dropped before a v2 refund was applied cuts in half: the start of a v2 answer.
_V2_DROPPED_BODY = b'{"originalTrxId":"","refundTrxId":"","refundTransactionStatus":"Completed"}'


@dataclass(frozen=True)
class _Wire:
    """How an operation's refusals and cut answers look: v1's HTTP 200 envelopes, or v2's."""

    error: Callable[[BkashError], Response]
    dropped: bytes = DROPPED_BODY


_STATUS_CODE = _Wire(bkash_error)
_V2 = _Wire(lambda error: JSONResponse(v2_error_body(error), status_code=400), _V2_DROPPED_BODY)


class BkashApi:
    def __init__(self, sandbox: BkashSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        version = f"/{self.sandbox.config.api_version}"
        s, desk = self.sandbox, self.sandbox.refund_desk
        settle = _Wire(lambda error: bkash_error(error, s.config.settle_error_envelope))
        calls: list[tuple[str, Callable[[Request], object]]] = [
            ("/token/grant", self._token_call(Operation.GRANT, s.tokens.grant)),
            ("/token/refresh", self._token_call(Operation.REFRESH, s.tokens.refresh)),
            ("/create", self._create),
            ("/execute", self._call(Operation.EXECUTE, s.execute_payment)),
            ("/payment/status", self._call(Operation.QUERY, s.query_payment)),
            ("/payment/confirm/capture", self._call(Operation.CAPTURE, s.capture_payment, settle)),
            # Both void spellings: the official plugin's and the portal page's (§2 #7, §15.1).
            ("/payment/confirm/void", self._call(Operation.VOID, s.void_payment, settle)),
            ("/payment/confirm/capture/void", self._call(Operation.VOID, s.void_payment, settle)),
            ("/general/searchTransaction", self._call(Operation.SEARCH, s.search_transaction)),
            ("/payment/refund", self._v1_refund),
        ]
        v2 = [(V2_REFUND_PATH, self._call(Operation.REFUND, desk.refund_v2, _V2)),
              (V2_REFUND_STATUS_PATH, self._call(Operation.REFUND_STATUS, desk.refund_status_v2, _V2))]
        return ([Route(f"{version}/tokenized/checkout{path}", endpoint, methods=["POST"])
                 for path, endpoint in calls]
                + [Route(base + path, endpoint, methods=["POST"])
                   for base in ("", version) for path, endpoint in v2])

    def _token_call(self, operation: Operation, issue: Callable[[str | None, str | None, dict], dict]):
        async def endpoint(request: Request) -> Response:
            body = await json_object(request)
            self.sandbox.calls.count(operation, Target(), body)

            def apply() -> dict:
                return issue(request.headers.get("username"), request.headers.get("password"), body or {})

            return await self._answer(operation, Target(), apply)

        return endpoint

    def _call(self, operation: Operation, handle: Callable[[dict], dict], wire: _Wire = _STATUS_CODE):
        async def endpoint(request: Request) -> Response:
            return await self._serve(request, await json_object(request), operation, handle, wire)

        return endpoint

    async def _v1_refund(self, request: Request) -> Response:
        # One URL, two operations (§2 #9/#10): a body without refund fields asks for refund status.
        body = await json_object(request)
        desk = self.sandbox.refund_desk
        if body is not None and desk.is_status_query(body):
            return await self._serve(request, body, Operation.REFUND_STATUS, desk.refund_status_v1)
        return await self._serve(request, body, Operation.REFUND, desk.refund_v1)

    async def _serve(self, request: Request, body: dict | None, operation: Operation,
                     handle: Callable[[dict], dict], wire: _Wire = _STATUS_CODE) -> Response:
        target = self.sandbox.target(operation, body)
        # v2 spells the paymentID paymentId (§9): counted under it all the same.
        counted = {"paymentID": body["paymentId"]} if body and "paymentId" in body else body
        self.sandbox.calls.count(operation, target, counted)
        if (denied := self._gateway_check(request, operation, target)) is not None:
            return denied

        def apply() -> dict:
            if body is None:
                raise BkashError("2025")
            return handle(body)

        return await self._answer(operation, target, apply, wire)

    async def _create(self, request: Request) -> Response:
        body = await json_object(request)
        target = self.sandbox.target(Operation.CREATE, body)
        self.sandbox.calls.count(Operation.CREATE, target, body)
        if (denied := self._gateway_check(request, Operation.CREATE, target)) is not None:
            return denied
        page_base = self.sandbox.config.public_base_url or str(request.base_url)

        def apply() -> dict:
            if body is None:
                raise BkashError("2025")
            return self.sandbox.create_payment(body, page_base.rstrip("/"))

        return await self._answer(Operation.CREATE, target, apply)

    def _gateway_check(self, request: Request, operation: Operation, target: Target) -> Response | None:
        # Header names are case-insensitive (§2.1); Starlette's headers already are.
        try:
            self.sandbox.tokens.authenticate(
                request.headers.get("authorization"), request.headers.get("x-app-key"),
                expire_now=lambda: self.sandbox.faults.take(operation, target, _EXPIRE_TOKEN) is not None)
        except GatewayError as error:
            return gateway_error(error)
        return None

    async def _answer(self, operation: Operation, target: Target, apply: Callable[[], dict],
                      wire: _Wire = _STATUS_CODE) -> Response:
        def respond() -> Response:
            try:
                return JSONResponse(apply())
            except BkashError as error:
                return wire.error(error)
            except GatewayError as error:
                return gateway_error(error)

        def refuse(code: str | None, message: str | None = None) -> Response:
            return wire.error(BkashError(code or "2003", message))

        fault = self.sandbox.faults.take(operation, target, API_KINDS)
        return await under_fault(fault, respond, refuse, wire.dropped)
