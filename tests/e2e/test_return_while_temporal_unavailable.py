"""A customer coming back from bKash while Temporal cannot be reached (a server restart) is not
shown a bare 500: an honest "we are confirming your payment" page (503, Retry-After) that asks
again by itself, and once Temporal answers, the same URL completes the return. The return is not
lost either way: the approval window's execute resolves the payment if the customer leaves."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from temporalio.client import Client
from tests.conftest import DATA_CONVERTER  # the project's one converter
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment

from contracts.bkash import BkashStage
from embedded import free_port, serve_asgi
from endpoint.app import create_app
from endpoint.bkash_returns import RETRY_AFTER_SECONDS, ResultLinks
from merchant_client import report_service_delivered
from tests.conftest import LINK_SECRET
from tests.support.bkash import kinds, pay, result, state


async def stopped_temporal() -> Client:
    """A client that was connected to a dev server which has since stopped."""
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"))
    try:
        client = await Client.connect(
            env.client.service_client.config.target_host, data_converter=DATA_CONVERTER,
            # Few client retries, so the test takes seconds (the SDK default retries for ~10 s).
            retry_config=RetryConfig(initial_interval_millis=50, max_interval_millis=200,
                                     max_elapsed_time_millis=1000, max_retries=2))
        await client.count_workflows()  # connected and answering
    finally:
        await env.shutdown()
    return client


async def test_a_return_while_temporal_is_down_gets_a_page_that_retries_then_completes(stack):
    req, url = await pay(stack)  # the default approval window: 15 minutes
    await stack.sandbox.add_fault("page", "no_redirect", match={"paymentID": url.payment_id})
    await stack.customer.approve(url.bkash_url)
    p = await stack.sandbox.payment(url.payment_id)
    callback = urlsplit(f"{p['callback_url']}?paymentID={url.payment_id}&status=success"
                        f"&signature={p['signature']}&apiVersion=1.2.0-beta/")
    path = f"{callback.path}?{callback.query}"
    down = create_app(await stopped_temporal(), links=ResultLinks(LINK_SECRET.encode()))
    async with serve_asgi(down) as down_url, httpx.AsyncClient(timeout=30) as browser:
        link = path.removeprefix("/bkash/return/").split("?")[0]  # <workflow id>/<token>
        answers = [await browser.get(f"{down_url}{path}"),
                   await browser.get(f"{down_url}/bkash/result/{link}")]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert f"http-equiv='refresh' content='{RETRY_AFTER_SECONDS}'" in answer.text
        assert "confirming your payment" in answer.text
    assert (await state(stack, req)).stage is BkashStage.AWAITING_APPROVAL
    # Temporal is back: the page's refresh of the same URL completes the return.
    async with httpx.AsyncClient(timeout=30) as browser:
        again = await browser.get(f"{stack.endpoint_url}{path}")
    assert again.status_code == 200 and "data-outcome='authorized'" in again.text
    assert (await state(stack, req)).stage is BkashStage.AUTHORIZED
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]


async def test_a_return_to_an_endpoint_that_never_reached_temporal_gets_the_same_page(stack):
    req, url = await pay(stack)
    client = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True,
                                  data_converter=DATA_CONVERTER)
    app = create_app(client, links=ResultLinks(LINK_SECRET.encode()))
    cb = urlsplit((await stack.sandbox.payment(url.payment_id))["callback_url"])
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=30) as browser:
        answer = await browser.get(f"{base}{cb.path}",
                                   params={"paymentID": url.payment_id, "status": "success"})
    assert answer.status_code == 503 and "confirming your payment" in answer.text
    assert answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    await stack.customer.cancel(url.bkash_url)
    assert (await result(stack, req)).stage is BkashStage.CANCELLED
