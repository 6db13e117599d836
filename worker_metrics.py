"""The worker's metrics (README "Metrics"): the SDK's own (Temporal's Runtime telemetry) and the
project's — payments started/finished, provider calls and their latency, refunds, bKash token
calls — all on one Prometheus endpoint, ``PAYMENTS_METRICS_ADDRESS`` (e.g. ``0.0.0.0:9464``).
Labels are low-cardinality only (provider, account, stage, operation, outcome), never a payment."""

from __future__ import annotations

from collections.abc import Callable

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.metrics import ActivityMetrics, ActivityMetricsInbound
from contracts.metrics import TOKEN_CALLS
from workflows.metrics import PaymentMetricsInbound

METRICS_SETTING = "PAYMENTS_METRICS_ADDRESS"


def prometheus_runtime(bind_address: str) -> Runtime:
    """A Runtime exporting every metric of the clients and workers built on it, before any client
    exists (production.md §7)."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True)))


class PaymentsMetrics(Interceptor):
    """Counts payments (workflow interceptor) and provider calls (activity interceptor). One per
    worker (``worker.build_worker``), holding that worker's instruments, so they are made once, not
    per activity attempt or workflow run."""

    def __init__(self) -> None:
        self._activities = ActivityMetrics()
        self._workflows = PaymentMetricsInbound.for_worker()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return ActivityMetricsInbound(next, self._activities)

    def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return self._workflows


def token_call_counter(meter: MetricMeter, account: str) -> Callable[[str, str], None]:
    """bKash grant/refresh calls by account and outcome (the budget is two an hour)."""
    counter = meter.create_counter(TOKEN_CALLS, "bKash grant/refresh calls, by outcome")

    def record(operation: str, outcome: str) -> None:
        counter.add(1, {"account": account, "operation": operation, "outcome": outcome})

    return record

