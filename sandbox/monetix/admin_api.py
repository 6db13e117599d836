"""The sandbox's own JSON API for tests: inspect payments, callbacks and the ledger, inject faults,
reset. Not part of Monetix; nothing here exists on the real platform."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.admin_api import CommonAdminApi

from .faults import FaultSpec
from .state import MonetixSandbox, parse_project_id


class AdminApi:
    def __init__(self, sandbox: MonetixSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/admin/ledger", self.ledger, methods=["GET"]),
                Route("/admin/payments", self.payments, methods=["GET"]),
                Route("/admin/payments/{project_id:int}/{payment_id}", self.payment, methods=["GET"]),
                # The default project's payments, without naming it.
                Route("/admin/payments/{payment_id}", self.payment, methods=["GET"]),
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
