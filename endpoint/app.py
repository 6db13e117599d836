"""The merchant-facing HTTP endpoint (the callbackURL given to bKash and to Monetix).

It only verifies, routes and waits for Temporal to accept: bKash browser returns
(endpoint/bkash_returns.py) and Monetix callbacks (endpoint/monetix_callbacks.py) become updates.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from temporalio.client import Client

from endpoint.bkash_returns import BKASH_WORKFLOW_PREFIX, OUTCOME, BkashReturns, result_page
from endpoint.monetix_callbacks import MAX_CALLBACK_BYTES, MonetixCallbacks

__all__ = ["BKASH_WORKFLOW_PREFIX", "MAX_CALLBACK_BYTES", "OUTCOME", "create_app", "result_page"]


def create_app(client: Client, *, result_page_url: str | None = None,
               monetix_projects: dict[int, str] | None = None) -> Starlette:
    """``monetix_projects`` maps each Monetix project id this merchant owns to its secret key."""
    bkash = BkashReturns(client, result_page_url=result_page_url)
    monetix = MonetixCallbacks(client, monetix_projects or {})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/bkash/return/{workflow_id:path}", bkash.on_return, methods=["GET"]),
        Route("/bkash/result/{workflow_id:path}", bkash.on_result, methods=["GET"]),
        Route("/monetix/callback", monetix.on_callback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])
