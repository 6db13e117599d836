"""The Tokenized Checkout API (reference §2): gateway token check, fault injection, then bKash's
business rules in state.py."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.wire import json_object, under_fault

from .codes import BkashError, GatewayError
from .faults import API_KINDS, FaultKind, Operation, Target
from .state import BkashSandbox
from .wire import DROPPED_BODY, bkash_error, gateway_error

_EXPIRE_TOKEN = frozenset({FaultKind.EXPIRE_TOKEN})


class BkashApi:
    def __init__(self, sandbox: BkashSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        prefix = f"/{self.sandbox.config.api_version}/tokenized/checkout"
        s = self.sandbox
        calls: list[tuple[str, Callable[[Request], object]]] = [
            ("/token/grant", self._token_call(Operation.GRANT, s.tokens.grant)),
            ("/token/refresh", self._token_call(Operation.REFRESH, s.tokens.refresh)),
            ("/create", self._create),
            ("/execute", self._call(Operation.EXECUTE, s.execute_payment)),
            ("/payment/status", self._call(Operation.QUERY, s.query_payment)),
            ("/payment/confirm/capture", self._call(Operation.CAPTURE, s.capture_payment, settle=True)),
            # Both void spellings: the official plugin's and the portal page's (§2 #7, §15.1).
            ("/payment/confirm/void", self._call(Operation.VOID, s.void_payment, settle=True)),
            ("/payment/confirm/capture/void", self._call(Operation.VOID, s.void_payment, settle=True)),
            ("/general/searchTransaction", self._call(Operation.SEARCH, s.search_transaction)),
            ("/payment/refund", self._call(Operation.REFUND, s.refund)),
        ]
        return [Route(prefix + path, endpoint, methods=["POST"]) for path, endpoint in calls]

    def _token_call(self, operation: Operation, issue: Callable[[str | None, str | None, dict], dict]):
        async def endpoint(request: Request) -> Response:
            body = await json_object(request)
            self.sandbox.calls.count(operation, Target(), body)

            def apply() -> dict:
                return issue(request.headers.get("username"), request.headers.get("password"), body or {})

            return await self._answer(operation, Target(), apply)

        return endpoint

    def _call(self, operation: Operation, handle: Callable[[dict], dict], *, settle: bool = False):
        envelope = self.sandbox.config.settle_error_envelope if settle else "statusCode"

        async def endpoint(request: Request) -> Response:
            body = await json_object(request)
            target = self.sandbox.target(operation, body)
            self.sandbox.calls.count(operation, target, body)
            if (denied := self._gateway_check(request, operation, target)) is not None:
                return denied

            def apply() -> dict:
                if body is None:
                    raise BkashError("2025")
                return handle(body)

            return await self._answer(operation, target, apply, envelope)

        return endpoint

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
                      envelope: str = "statusCode") -> Response:
        def respond() -> Response:
            try:
                return JSONResponse(apply())
            except BkashError as error:
                return bkash_error(error, envelope)
            except GatewayError as error:
                return gateway_error(error)

        def refuse(code: str | None) -> Response:
            return bkash_error(BkashError(code or "2003"), envelope)

        fault = self.sandbox.faults.take(operation, target, API_KINDS)
        return await under_fault(fault, respond, refuse, DROPPED_BODY)
