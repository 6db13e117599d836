"""The part of the sandboxes' own admin API that both answer alike: reset, and adding, listing and
clearing faults. Not part of either provider; nothing here exists on a real service."""

from __future__ import annotations

from typing import Protocol

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import FaultBook, FaultSpec


class Sandbox(Protocol):
    faults: FaultBook

    def reset(self) -> None: ...


class CommonAdminApi:
    """``spec`` is the sandbox's FaultSpec, which knows its operations, kinds and match fields."""

    def __init__(self, sandbox: Sandbox, spec: type[FaultSpec]) -> None:
        self.sandbox = sandbox
        self.spec = spec

    def routes(self) -> list[Route]:
        return [Route("/admin/reset", self.reset, methods=["POST"]),
                Route("/admin/faults", self.add_fault, methods=["POST"]),
                Route("/admin/faults", self.faults, methods=["GET"]),
                Route("/admin/faults", self.clear_faults, methods=["DELETE"])]

    async def reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return JSONResponse({"reset": True})

    async def add_fault(self, request: Request) -> Response:
        try:
            spec = self.spec.model_validate_json(await request.body())
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
