"""Issue 12 §4: the worker's Prometheus endpoint after a demo-like run — the SDK's runtime metrics
and the project's own counters match what happened (payments by final stage, provider calls by
operation and outcome, bKash token calls); labels carry no payment, invoice or customer."""

from __future__ import annotations

import asyncio
import re

import httpx
from temporalio.client import Client

from embedded import free_port, serve_asgi
from merchant_client import report_service_delivered, report_service_failed
from sandbox.bkash import create_app as create_bkash_sandbox
from tests.conftest import DATA_CONVERTER, SANDBOX, make_settings, running_stack
from tests.support.bkash import pay, result, wait_for_stage
from contracts.bkash import BkashStage
from worker import build_activities
from worker_metrics import prometheus_runtime

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


async def test_the_worker_metrics_count_what_happened(dev_env, http, monetix_sandbox_url):
    bind = f"127.0.0.1:{free_port()}"
    runtime = prometheus_runtime(bind)
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  runtime=runtime, data_converter=DATA_CONVERTER)
    env = type("Env", (), {"client": client})()
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        acts = build_activities(make_settings(sandbox_url, "http://unused", "unused",
                                              monetix_sandbox_url), http,
                                meter=runtime.metric_meter)
        async with running_stack(env, sandbox_url, monetix_sandbox_url, http, acts) as stack:
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
            await asyncio.sleep(1.5)  # the exporter's collection interval
            async with httpx.AsyncClient() as scrape:
                text = (await scrape.get(f"http://{bind}/metrics")).text

    finished = "payments_finished_total"
    assert total(text, finished, provider="bkash", stage="CAPTURED", account="default") == 3
    assert total(text, finished, provider="bkash", stage="VOIDED") == 1
    assert total(text, finished, provider="bkash", stage="CANCELLED") == 1
    assert total(text, "payments_started_total", provider="bkash") == 5
    assert total(text, "provider_calls_total", operation="capture_payment", outcome="ok") == 3
    assert total(text, "provider_calls_total", operation="void_payment", outcome="ok") == 1
    assert total(text, "provider_calls_total", operation="create_payment", outcome="ok") == 5
    assert total(text, "provider_call_latency_count", operation="execute_payment") == 4
    assert total(text, "bkash_token_calls_total", operation="grant", outcome="ok") == 1
    # The SDK's own runtime metrics are on the same endpoint.
    assert total(text, "temporal_workflow_completed_total") >= 5
    # Low cardinality: no label carries a payment, an invoice or a workflow id.
    for _, labels, _ in samples(text):
        for value in labels.values():
            assert not value.startswith(("INV-", "bkash-", "TR00")), labels
