"""The endpoint's metrics (README "Metrics"): callbacks and returns by kind and verdict, served on
their own listener, with only our fixed phrases as labels (never a sender's text)."""

from __future__ import annotations

import json

import httpx

from contracts.bkash import BkashStage
from contracts.monetix import MonetixStage
from embedded import serve_asgi
from endpoint.metrics import METRICS, metrics_app
from merchant_client import report_service_failed, submit_transaction_id
from providers.monetix_signing import sign
from tests.conftest import MONETIX
from tests.support.bkash import pay, result, wait_for_stage
from tests.support.monetix import purchase_result, start_gate

CALLBACKS = "monetix callbacks"


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


async def test_a_late_callback_is_a_duplicate_and_a_refusal_carries_its_reason(stack):
    req, _ = await start_gate(stack)
    pid = req.sale.payment_id
    await submit_transaction_id(stack.client, pid, await stack.monetix_customer.pay_in_bkash(pid))
    assert (await purchase_result(stack, req)).outcome is MonetixStage.SUCCESS
    success = (await stack.monetix.wait_for_callback(pid, "success"))["body"]
    unsigned = {k: v for k, v in success.items() if k != "signature"}
    # A late "processing" callback, overtaken by the final one: signed by Monetix, yet a repeat
    # for a payment already final. (An exact re-send of a callback is absorbed by Temporal's
    # update id and answered with the first outcome, so it counts as accepted: README "Metrics".)
    late = json.loads(json.dumps(unsigned))
    late["payment"]["status"] = late["operation"]["status"] = "processing"
    late["signature"] = sign(late, MONETIX.secret_key)
    # Another merchant's project, correctly signed with that project's key: not ours to take.
    (other, other_key), = MONETIX.other_projects.items()
    foreign = {**unsigned, "project_id": other}
    foreign["signature"] = sign(foreign, other_key)
    duplicates = METRICS.value(CALLBACKS, "duplicate", "payment already final")
    unknown = METRICS.value(CALLBACKS, "refused", "unknown project")
    accepted = METRICS.value(CALLBACKS, "accepted")
    url = f"{stack.endpoint_url}/monetix/callback"
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        again = await http.post(url, content=json.dumps(late), headers=headers)
        refused = await http.post(url, content=json.dumps(foreign), headers=headers)
        async with serve_asgi(metrics_app()) as metrics_url:
            text = (await http.get(f"{metrics_url}/metrics")).text
    assert (again.status_code, again.text) == (200, "OK (payment already final)")
    assert refused.status_code == 400
    assert METRICS.value(CALLBACKS, "duplicate", "payment already final") == duplicates + 1
    assert METRICS.value(CALLBACKS, "refused", "unknown project") == unknown + 1
    assert METRICS.value(CALLBACKS, "accepted") == accepted  # neither counted as accepted
    assert (f'endpoint_requests_total{{kind="{CALLBACKS}",verdict="duplicate",'
            f'reason="payment already final"}} {duplicates + 1}') in text.splitlines()
    assert (f'endpoint_requests_total{{kind="{CALLBACKS}",verdict="refused",'
            f'reason="unknown project"}} {unknown + 1}') in text.splitlines()
