"""The endpoint's metrics (README "Metrics"): callbacks and returns by kind and verdict, served on
their own listener, with only our fixed phrases as labels (never a sender's text)."""

from __future__ import annotations

import httpx

from embedded import serve_asgi
from endpoint.metrics import METRICS, metrics_app
from merchant_client import report_service_failed
from tests.support.bkash import pay, result, wait_for_stage
from contracts.bkash import BkashStage


async def test_returns_and_callbacks_are_counted_by_verdict(stack):
    returns, forged = METRICS.value("bkash returns", "accepted"), \
        METRICS.value("monetix callbacks", "refused")
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    async with httpx.AsyncClient() as http:
        bad = await http.post(f"{stack.endpoint_url}/monetix/callback",
                              json={"project_id": 1234, "payment": {"id": "P-x", "status": "success"},
                                    "signature": "AAAA<script>"})
        assert bad.status_code in (400, 401, 403)
        async with serve_asgi(metrics_app()) as metrics_url:
            text = (await http.get(f"{metrics_url}/metrics")).text
    assert METRICS.value("bkash returns", "accepted") == returns + 1
    assert METRICS.value("monetix callbacks", "refused") == forged + 1
    assert 'endpoint_requests_total{kind="bkash returns",verdict="accepted"}' in text
    assert "<script>" not in text and "P-x" not in text
    await report_service_failed(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.VOIDED
