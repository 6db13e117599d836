"""The merchant-facing HTTP endpoint (the callbackURL given to bKash and to Monetix).

It only verifies, routes and waits for Temporal to accept: bKash browser returns
(endpoint/bkash_returns.py) and Monetix callbacks (endpoint/monetix_callbacks.py) become updates.
Every route is behind endpoint/limits.py (path, query, header and body bounds), and refusals are
logged in aggregate (endpoint/common.py ``REFUSALS``, flushed every minute while the app runs).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from temporalio.client import Client

from endpoint.bkash_returns import BKASH_WORKFLOW_PREFIX, OUTCOME, BkashReturns, result_page
from endpoint.common import REFUSALS
from endpoint.limits import RequestLimits
from endpoint.monetix_callbacks import MAX_CALLBACK_BYTES, MonetixCallbacks

__all__ = ["BKASH_WORKFLOW_PREFIX", "MAX_CALLBACK_BYTES", "OUTCOME", "create_app", "result_page"]


def create_app(client: Client, *, result_page_url: str | None = None,
               monetix_projects: dict[int, str] | None = None,
               monetix_accounts: dict[int, str] | None = None, **bkash_options) -> Starlette:
    """``monetix_projects`` maps each Monetix project id this merchant owns to its secret key,
    ``monetix_accounts`` each project to its merchant account (routing its callbacks);
    ``bkash_options`` go to BkashReturns (``links``: the result-link secrets, without which every
    bKash return is refused; ``signature_rule``)."""
    bkash = BkashReturns(client, result_page_url=result_page_url, **bkash_options)
    monetix = MonetixCallbacks(client, monetix_projects or {}, monetix_accounts)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/bkash/return/{workflow_id:path}", bkash.on_return, methods=["GET"]),
        Route("/bkash/result/{workflow_id:path}", bkash.on_result, methods=["GET"]),
        Route("/monetix/callback", monetix.on_callback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ], middleware=[Middleware(RequestLimits)], lifespan=_refusal_log_flusher)


@contextlib.asynccontextmanager
async def _refusal_log_flusher(app):
    # The aggregate line of the last interval is written even if no further refusal comes.
    task = asyncio.create_task(REFUSALS.flush_periodically())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
