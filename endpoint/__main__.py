"""Run the merchant endpoint: `python -m endpoint --host 0.0.0.0 --port 8080`.

Connects to Temporal with temporalio.envconfig (TEMPORAL_ADDRESS, ...); PAYMENTS_RESULT_PAGE_URL,
when set, is where customers land after bKash (with ?payment=&outcome=&amount=&paymentID=).
MONETIX_PROJECT_ID and MONETIX_SECRET_KEY let it verify Monetix callbacks (refused without them).
PAYMENTS_LINK_SECRET (required, the worker's too) checks the token of customers' result links.
"""

import argparse
import asyncio
import contextlib
import logging
import signal

import uvicorn

import runtime_exit
from merchant_client import connect
from merchant_client.connection import PaymentError
from embedded import serve_asgi
from endpoint.metrics import metrics_app
from merchant_client.tracing import tracing_interceptors
from config import load_endpoint_settings
from endpoint.app import create_app
from endpoint.bkash_returns import ResultLinks
from endpoint.limits import MAX_CONNECTIONS, count_server_refusals, server_settings

log = logging.getLogger("endpoint")


def monetix_projects(settings) -> dict[int, str]:
    """The Monetix projects whose signed callbacks this endpoint accepts; without Monetix settings
    there are none, and an operator must hear that at start-up, not from Monetix's retries."""
    if not settings.monetix_projects:
        log.warning("no Monetix settings: every Monetix callback will be refused (400 unknown "
                    "project_id); set MONETIX_PROJECT_ID and MONETIX_SECRET_KEY (the project's "
                    "signing key) to accept them")
        return {}
    return {project: key.get_secret_value() for project, key in settings.monetix_projects.items()}


async def main(host: str, port: int, max_connections: int = MAX_CONNECTIONS,
               metrics_port: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The Temporal connection, the link secret and the Monetix verification keys: no bKash secret.
    settings = load_endpoint_settings()
    projects = monetix_projects(settings)
    client = await connect(interceptors=tracing_interceptors())
    app = create_app(client, result_page_url=settings.result_page_url, monetix_projects=projects,
                     monetix_accounts=settings.monetix_accounts,
                     links=ResultLinks.from_settings(settings), signature_rule=settings.redirect_signature_rule)
    # Bounds on what one client can hold: connections, idle keep-alive, the request head's size and
    # time to arrive (endpoint/limits.py); uvicorn's per-request warnings become aggregate counts.
    count_server_refusals()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False,
                                           **server_settings(limit_concurrency=max_connections)))
    # SIGINT/SIGTERM drain in-flight callbacks (answered before exit), then the process exits 0;
    # uvicorn's own signal capture would re-raise the signal after shutdown and kill the process.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, server)
    if metrics_port is None:
        await server.serve()
        return
    # Metrics on their own loopback listener, never on the public port (README "Metrics").
    async with serve_asgi(metrics_app(), host="127.0.0.1", port=metrics_port):
        logging.info("endpoint metrics on http://127.0.0.1:%d/metrics", metrics_port)
        await server.serve()


def _stop(server: uvicorn.Server) -> None:
    if server.should_exit:  # a second Ctrl-C: stop waiting for in-flight requests
        server.force_exit = True
    server.should_exit = True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="merchant endpoint (bKash returns, callbacks)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS,
                        help="connections plus requests in progress before new ones get 503 "
                             f"(default {MAX_CONNECTIONS})")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve the endpoint's metrics on 127.0.0.1:PORT/metrics (off unless "
                             "given)")
    args = parser.parse_args()
    try:
        runtime_exit.run(main(args.host, args.port, args.max_connections, args.metrics_port))
    except PaymentError as exc:  # Temporal unreachable, a wrong namespace: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
