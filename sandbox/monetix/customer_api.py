"""What the customer does outside Monetix: pays in the bKash app (seed, Gate steps 8-9). Not part of
Monetix; a test action, like the bKash sandbox's hosted page is for bKash."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import ActionError, MonetixSandbox, parse_project_id
from .wire import read_json


class CustomerApi:
    def __init__(self, sandbox: MonetixSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/sandbox/customer/pay", self.pay, methods=["POST"])]

    async def pay(self, request: Request) -> Response:
        """``{"project_id"?, "payment_id", "amount"?, "wallet"?}`` → ``{"transaction_id"}``."""
        self.sandbox.expire_due()
        body = await read_json(request)
        if body is None or not isinstance(body.get("payment_id"), str):
            return JSONResponse({"error": "send {\"payment_id\": ..., \"project_id\"?, \"amount\"?, \"wallet\"?}"},
                                status_code=422)
        raw_project = body.get("project_id", self.sandbox.config.project_id)
        project_id = parse_project_id(raw_project)
        if project_id is None:
            return JSONResponse({"error": f"project_id {raw_project!r} is not an integer"}, status_code=422)
        try:
            transaction_id = self.sandbox.customer_pays(project_id, body["payment_id"], body.get("amount"),
                                                        body.get("wallet"))
        except ActionError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        return JSONResponse({"transaction_id": transaction_id})
