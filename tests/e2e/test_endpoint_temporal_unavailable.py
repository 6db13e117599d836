"""A Monetix callback that Temporal cannot take must not be acknowledged: Monetix stops re-sending
on HTTP 200, so a 200 while Temporal is down loses the callback. The endpoint answers 503 (Monetix
re-sends later) both when Temporal was never reachable and when it goes away under a connected
client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
from temporalio.client import Client
from tests.conftest import DATA_CONVERTER  # the project's one converter
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment

from embedded import free_port, serve_asgi
from endpoint.app import create_app
from providers.monetix_signing import sign
from tests.conftest import MONETIX
from tests.support.monetix import new_payment_id


def signed_final_callback(payment_id: str) -> dict:
    body = {"project_id": MONETIX.project_id,
            "payment": {"id": payment_id, "type": "purchase", "status": "success",
                        "sum": {"amount": 100000, "currency": "BDT"}},
            "operation": {"id": 41, "type": "sale", "status": "success", "code": "0",
                          "provider": {"payment_id": "8KJ1056KR3"}}}
    return {**body, "signature": sign(body, MONETIX.secret_key)}


async def deliver(client: Client, body: dict) -> httpx.Response:
    """POST the callback to an endpoint served over HTTP, as Monetix does."""
    app = create_app(client, monetix_projects={MONETIX.project_id: MONETIX.secret_key})
    async with serve_asgi(app) as url, httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{url}/monetix/callback", content=json.dumps(body),
                               headers={"Content-Type": "application/json"})


async def test_callback_is_not_acknowledged_while_temporal_cannot_be_reached():
    # The endpoint came up while Temporal was down: nothing listens at the address.
    client = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True,
                                  data_converter=DATA_CONVERTER)
    response = await deliver(client, signed_final_callback(new_payment_id()))
    assert response.status_code == 503, response.text
    assert "re-send" in response.text and len(response.text) < 200


async def test_callback_is_not_acknowledged_when_temporal_goes_away():
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"))
    try:
        target = env.client.service_client.config.target_host
        # Few client retries, so the test takes seconds (the SDK default retries for ~10 s).
        client = await Client.connect(
            target, data_converter=DATA_CONVERTER,
            retry_config=RetryConfig(initial_interval_millis=50, max_interval_millis=200,
                                     max_elapsed_time_millis=1000, max_retries=2))
        await client.count_workflows()  # connected and answering
    finally:
        await env.shutdown()
    response = await deliver(client, signed_final_callback(new_payment_id()))
    assert response.status_code == 503, response.text
    assert "re-send" in response.text and len(response.text) < 200


async def test_callback_for_an_unknown_payment_still_answers_404_when_temporal_is_up(stack):
    # The other side of the line: a reachable Temporal that does not know the payment is a 404,
    # not an outage.
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{stack.endpoint_url}/monetix/callback",
                                   json=signed_final_callback(new_payment_id()))
    assert response.status_code == 404
