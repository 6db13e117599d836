"""Gate (reference §3): sale, clarification, refund and status, each authenticated by its signature
(§2.1) before fault injection and the platform's rules in state.py and refunds.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .codes import GateError
from .faults import Operation, Target
from .state import MonetixSandbox, field_value, parse_project_id
from .wire import answer, error_response, read_json

Handler = Callable[[dict[str, Any], int, str], dict]


class GateApi:
    def __init__(self, sandbox: MonetixSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        s = self.sandbox
        return [
            Route(s.config.sale_path, self._endpoint(Operation.SALE, s.sale), methods=["POST"]),
            Route("/v2/payment/wallet/{method}/sale", self._endpoint(Operation.SALE, self._unknown_method),
                  methods=["POST"]),
            Route("/v2/payment/clarification", self._endpoint(Operation.CLARIFICATION, s.clarification),
                  methods=["POST"]),
            Route(s.config.refund_path, self._endpoint(Operation.REFUND, s.refund), methods=["POST"]),
            Route("/v2/payment/wallet/{method}/refund", self._endpoint(Operation.REFUND, self._unknown_method),
                  methods=["POST"]),
            Route("/v2/payment/status",
                  self._endpoint(Operation.STATUS, lambda body, project, _rid: s.status(body, project)),
                  methods=["POST"]),
        ]

    @staticmethod
    def _unknown_method(body: dict[str, Any], project_id: int, request_id: str) -> dict:
        # §6 2541: the sandbox knows bKash only (sale_path); any other wallet method is unknown.
        raise GateError("2541", detail="this sandbox offers bKash only")

    def _endpoint(self, operation: Operation, handle: Handler):
        sandbox = self.sandbox

        async def endpoint(request: Request) -> Response:
            sandbox.expire_due()
            body = await read_json(request)
            request_id = sandbox.ids.request_id()
            raw_project = field_value(body, "general.project_id") if body else None
            payment_id = field_value(body, "general.payment_id") if body else None
            echo_project = parse_project_id(raw_project)
            echo_payment = payment_id if isinstance(payment_id, str) else None

            def refuse(error: GateError) -> Response:
                sandbox.reject(error)
                return error_response(error, project_id=echo_project, payment_id=echo_payment,
                                      request_id=request_id)

            try:
                project_id = sandbox.authenticate(body)
            except GateError as error:
                return refuse(error)
            assert body is not None

            def apply() -> Response:
                try:
                    return JSONResponse(handle(body, project_id, request_id))
                except GateError as error:
                    return refuse(error)

            return await answer(sandbox, operation, Target(project_id, echo_payment), apply, refuse)

        return endpoint
