"""Issue 12 §4: the worker's Prometheus endpoint after a demo-like run — the SDK's runtime metrics
and the project's own counters match what happened (payments by final stage, provider calls by
operation and outcome, bKash token calls and the budget left, refunds by final outcome); labels
carry no payment, invoice or customer."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import timedelta

import httpx
from temporalio.client import Client

from contracts.bkash import BkashStage
from contracts.common import Provider
from contracts.monetix import MonetixStage
from contracts.refunds import RefundRequest, RefundsInput, RefundStage
from embedded import free_port, serve_asgi
from merchant_client import (
    refund,
    refunds,
    report_service_delivered,
    report_service_failed,
    submit_transaction_id,
)
from sandbox.bkash import create_app as create_bkash_sandbox
from tests.conftest import DATA_CONVERTER, SANDBOX, make_settings, running_stack
from tests.support.bkash import pay, pay_and_capture, result, wait_for_stage
from tests.support.monetix import purchase_result, start_gate
from worker import build_activities
from worker_metrics import TokenBudgets, prometheus_runtime

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+([0-9.eE+-]+)$')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(text: str, name: str, **want: str) -> float:
    return sum(v for n, labels, v in samples(text)
               if n == name and all(labels.get(k) == w for k, w in want.items()))


@contextlib.asynccontextmanager
async def metered_stack(dev_env, http, monetix_sandbox_url):
    """A worker on a Prometheus runtime of its own, wired as worker.main wires it, with a bKash
    sandbox of its own (so its token calls are this test's alone): (stack, address, activities)."""
    bind = f"127.0.0.1:{free_port()}"
    runtime = prometheus_runtime(bind)
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  runtime=runtime, data_converter=DATA_CONVERTER)
    env = type("Env", (), {"client": client})()
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        acts = build_activities(make_settings(sandbox_url, "http://unused", "unused",
                                              monetix_sandbox_url), http,
                                meter=runtime.metric_meter,
                                token_budgets=TokenBudgets(runtime.metric_meter))
        async with running_stack(env, sandbox_url, monetix_sandbox_url, http, acts) as stack:
            yield stack, bind, acts


async def scrape(bind: str) -> str:
    await asyncio.sleep(1.5)  # the exporter's collection interval
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://{bind}/metrics")).text


async def test_the_worker_metrics_count_what_happened(dev_env, http, monetix_sandbox_url):
    async with metered_stack(dev_env, http, monetix_sandbox_url) as (stack, bind, _):
        async def authorized_then(decide):
            req, url = await pay(stack)
            await stack.customer.approve(url.bkash_url)
            await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
            await decide(stack.client, req.invoice_number)
            return await result(stack, req)

        def captured():
            return authorized_then(report_service_delivered)

        def voided():
            return authorized_then(report_service_failed)

        async def cancelled():
            req, url = await pay(stack)
            await stack.customer.cancel(url.bkash_url)
            return await result(stack, req)

        results = await asyncio.gather(captured(), captured(), captured(), voided(),
                                       cancelled())
        assert [r.stage for r in results] == [BkashStage.CAPTURED] * 3 + [
            BkashStage.VOIDED, BkashStage.CANCELLED]
        text = await scrape(bind)

    finished = "payments_finished_total"
    assert total(text, finished, provider="bkash", stage="CAPTURED", account="default") == 3
    assert total(text, finished, provider="bkash", stage="VOIDED") == 1
    assert total(text, finished, provider="bkash", stage="CANCELLED") == 1
    assert total(text, "payments_started_total", provider="bkash") == 5
    # Payments only: not their notification streams (each payment has one) nor anything else.
    assert total(text, "payments_started_total") == 5
    assert total(text, finished) == 5
    assert total(text, "provider_calls_total", operation="capture_payment", outcome="ok") == 3
    assert total(text, "provider_calls_total", operation="void_payment", outcome="ok") == 1
    assert total(text, "provider_calls_total", operation="create_payment", outcome="ok") == 5
    assert total(text, "provider_call_latency_count", operation="execute_payment") == 4
    assert total(text, "bkash_token_calls_total", operation="grant", outcome="ok") == 1
    assert total(text, "bkash_token_budget_remaining", account="default") == 1  # of 2 an hour
    # The SDK's own runtime metrics are on the same endpoint.
    assert total(text, "temporal_workflow_completed_total") >= 5
    # Low cardinality: no label carries a payment, an invoice or a workflow id.
    for _, labels, _ in samples(text):
        for value in labels.values():
            assert not value.startswith(("INV-", "bkash-", "TR00")), labels


async def monetix_refund(stack, ledger: RefundsInput, refund_id: str, amount_poisha: int):
    return await refund(stack.client, RefundRequest(
        provider=Provider.MONETIX, payment_key=ledger.payment_key, refund_id=refund_id,
        amount_poisha=amount_poisha, reason="one night less"),
        task_queue=stack.settings.task_queue, ledger=ledger)


async def test_refunds_a_monetix_purchase_and_a_token_refresh_are_counted(dev_env, http,
                                                                          monetix_sandbox_url):
    """Each refund's final outcome counted once, however it was learnt (a bKash answer lost and
    resolved by refund status, a Monetix decline by callback, a Monetix success by the status
    request after its callback was lost); a Monetix purchase by its outcome; a refresh by the
    token manager, and the budget gauge following it."""
    async with metered_stack(dev_env, http, monetix_sandbox_url) as (stack, bind, acts):
        req, url, paid = await pay_and_capture(stack)
        assert paid.stage is BkashStage.CAPTURED
        before = await scrape(bind)

        # The token is 51 minutes old: the refund's call refreshes it first (refresh at 50).
        acts[0].__self__._client.tokens.state.obtained_at -= 51 * 60
        await stack.sandbox.add_fault("refund", "drop_connection", commit=True, times=1,
                                      match={"paymentID": url.payment_id})
        bkash = await refund(stack.client, RefundRequest(
            provider=Provider.BKASH, payment_key=req.invoice_number,
            refund_id=f"RF-M1-{req.invoice_number}",
            amount_poisha=20000, reason="customer cancelled", sku="room"),
            task_queue=stack.settings.task_queue, callback_base_url=stack.endpoint_url)
        assert bkash.stage is RefundStage.SUCCEEDED and bkash.reconciled

        mx, _ = await start_gate(stack)
        pid = mx.sale.payment_id
        await submit_transaction_id(stack.client, pid,
                                    await stack.monetix_customer.pay_in_bkash(pid))
        assert (await purchase_result(stack, mx)).outcome is MonetixStage.SUCCESS
        ledger = RefundsInput(provider=Provider.MONETIX, payment_key=pid,
                              callback_base_url=stack.endpoint_url,
                              callback_wait=timedelta(seconds=2))
        await stack.monetix.decline_next_refund(pid)
        # Refund ids are unique within a Monetix project: the session's sandbox is shared.
        declined = await monetix_refund(stack, ledger, f"MRF-1-{pid}", 30000)
        await stack.monetix.add_fault("callback", "lose", times=1,
                                      match={"payment_id": pid, "operation_type": "refund"})
        by_status = await monetix_refund(stack, ledger, f"MRF-2-{pid}", 20000)
        assert (declined.stage, by_status.stage) == (RefundStage.FAILED, RefundStage.SUCCEEDED)
        timeline = (await refunds(stack.client, Provider.MONETIX, pid)).timeline
        assert any("asking the status request" in e.event for e in timeline)
        text = await scrape(bind)
        # The two ledgers stay open for their refund windows; their worker ends with this test,
        # and a later reconciliation of the session's namespace would wait on their queries.
        for ledger_id in (f"refunds-{req.workflow_id}", f"refunds-monetix-{pid}"):
            await stack.client.get_workflow_handle(ledger_id).terminate("test over")

    assert total(before, "refunds_total") == 0
    assert total(before, "bkash_token_budget_remaining", account="default") == 1
    assert total(text, "refunds_total", provider="bkash", outcome="SUCCEEDED") == 1
    assert total(text, "refunds_total", provider="monetix", outcome="FAILED") == 1
    assert total(text, "refunds_total", provider="monetix", outcome="SUCCEEDED") == 1
    assert total(text, "refunds_total") == 3  # once each: no REFUNDING, no retry counted again
    assert total(text, "provider_calls_total", operation="monetix_refund_status", outcome="ok") >= 1
    finished = "payments_finished_total"
    assert total(text, finished, provider="monetix", workflow="MonetixGatePurchase",
                 stage="SUCCESS", account="default") == 1
    assert total(text, finished, provider="bkash", stage="CAPTURED") == 1
    # The two refunds ledgers and every notification stream are not payments.
    assert total(text, "payments_started_total") == 2 and total(text, finished) == 2
    assert total(text, "bkash_token_calls_total", operation="grant", outcome="ok") == 1
    assert total(text, "bkash_token_calls_total", operation="refresh", outcome="ok") == 1
    assert total(text, "bkash_token_budget_remaining", account="default") == 0
