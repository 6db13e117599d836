"""A payment resting in CAPTURING while bKash keeps refusing the capture is what a merchant must be
alerted to: the workflow is Running, exactly as while a customer takes their time. The stage's
time is a search attribute (PaymentStageSince), so ``payments_stalled{stage}`` is one visibility
count per stage, exported on the worker's Prometheus endpoint; ``starter.py stalled`` lists them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from temporalio.runtime import Runtime

from contracts.bkash import BkashStage
from embedded import free_port
from contracts.common import SearchAttribute
from merchant_client import report_service_delivered
from merchant_client.calls import KEYS
from merchant_client.stalled import count_stalled, list_stalled, stalled_query, watch_stalled
from tests.support.bkash import kinds, pay, result, wait_for_stage
from worker_metrics import prometheus_runtime, stalled_gauge

SINCE = KEYS[SearchAttribute.PAYMENT_STAGE_SINCE]


async def scrape(http, port: int, stage: str) -> int | None:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in text.splitlines():
        if line.startswith("payments_stalled{") and f'stage="{stage}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return None


async def test_a_capture_bkash_keeps_refusing_is_counted_stalled_until_it_succeeds(stack, http):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    # bKash answers the capture with 503 four times: Temporal retries it (1, 2, 4, 8 s apart).
    await stack.sandbox.add_fault("capture", "http_error", status=503, times=4,
                                  match={"paymentID": url.payment_id})
    delivered_at = datetime.now(timezone.utc)
    await report_service_delivered(stack.client, req.invoice_number)
    await wait_for_stage(stack, req, BkashStage.CAPTURING)
    handle = stack.client.get_workflow_handle(req.workflow_id)
    since = (await handle.describe()).typed_search_attributes.get(SINCE)
    assert since is not None and delivered_at - timedelta(seconds=1) <= since \
        <= datetime.now(timezone.utc)
    await asyncio.sleep(1.5)

    stalled = await list_stalled(stack.client, ["CAPTURING"], timedelta(seconds=1))
    assert req.workflow_id in [row["workflow_id"] for row in stalled]
    assert req.workflow_id not in [row["workflow_id"] for row in await list_stalled(
        stack.client, ["CAPTURING"], timedelta(hours=1))]
    # The gauge, as Prometheus scrapes it from a worker's Runtime.
    port = free_port()
    runtime: Runtime = prometheus_runtime(f"127.0.0.1:{port}")
    stop = asyncio.Event()
    record = stalled_gauge(runtime.metric_meter)
    seen: dict[str, int] = {}
    task = asyncio.create_task(watch_stalled(
        stack.client, ["CAPTURING", "VOIDING"], timedelta(seconds=1), timedelta(seconds=0.2),
        lambda stage, n: (seen.__setitem__(stage, n), record(stage, n)), stop))
    try:
        for _ in range(50):
            if "CAPTURING" in seen:
                break
            await asyncio.sleep(0.1)
        expected = (await count_stalled(stack.client, ["CAPTURING"],
                                        timedelta(seconds=1)))["CAPTURING"]
        assert expected >= 1 and seen["CAPTURING"] >= 1
        assert await scrape(http, port, "CAPTURING") in (seen["CAPTURING"], expected)
        assert await scrape(http, port, "VOIDING") is not None

        res = await result(stack, req)
        assert res.stage is BkashStage.CAPTURED
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE",
                                                                                 "CAPTURE"]
        assert req.workflow_id not in [row["workflow_id"] for row in await list_stalled(
            stack.client, ["CAPTURING"], timedelta(seconds=1))]
        # The final stage carries its own time: the payment left CAPTURING.
        final_since = (await handle.describe()).typed_search_attributes.get(SINCE)
        assert final_since is not None and final_since > since
    finally:
        stop.set()
        await task


def test_the_stalled_query_names_the_stage_and_a_utc_cutoff():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone(timedelta(hours=6)))
    assert stalled_query("CAPTURING", timedelta(minutes=15), now) == (
        'ExecutionStatus="Running" AND PaymentStage="CAPTURING" '
        'AND PaymentStageSince < "2026-12-02T05:45:00.000000Z"')
