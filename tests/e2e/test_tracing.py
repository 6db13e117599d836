"""PAYMENTS_TRACING=otel (optional, off by default): a payment's start, its workflow run and its
provider activities become OpenTelemetry spans through temporalio.contrib.opentelemetry."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from merchant_client.tracing import tracing_interceptors
from tests.conftest import DATA_CONVERTER, running_stack
from tests.support.bkash import pay, result


def test_tracing_is_off_by_default_and_a_wrong_value_is_named():
    assert tracing_interceptors({}) == []
    with pytest.raises(SystemExit, match="PAYMENTS_TRACING must be off"):
        tracing_interceptors({"PAYMENTS_TRACING": "jaeger"})


async def test_a_payment_is_traced_when_tracing_is_on(dev_env, bkash_sandbox_url,
                                                      monetix_sandbox_url, http,
                                                      shared_activities):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  data_converter=DATA_CONVERTER,
                                  interceptors=tracing_interceptors({"PAYMENTS_TRACING": "otel"}))
    env = type("Env", (), {"client": client})()
    async with running_stack(env, bkash_sandbox_url, monetix_sandbox_url, http,
                             shared_activities) as stack:
        req, url = await pay(stack)
        await stack.customer.cancel(url.bkash_url)
        await result(stack, req)
    names = {s.name for s in exporter.get_finished_spans()}
    assert "StartUpdateWithStartWorkflow:BkashAuthCapture" in names, names  # merchant client
    assert "StartWorkflowUpdate:customer_returned" in names, names          # the endpoint
    assert "RunWorkflow:BkashAuthCapture" in names, names
    assert "RunActivity:create_payment" in names, names
    # Spans carry names and ids only: no customer data, no secrets.
    for span in exporter.get_finished_spans():
        assert "rahim" not in str(span.attributes).lower()
