"""The worker's metrics (README "Metrics"): the SDK's own (Temporal's Runtime telemetry) and the
project's — payments started/finished, provider calls and their latency, refunds, bKash token
calls and the token budget left, payments stalled in a stage — all on one Prometheus endpoint,
``PAYMENTS_METRICS_ADDRESS`` (e.g. ``0.0.0.0:9464``).
Labels are low-cardinality only (provider, account, stage, operation, outcome), never a payment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.metrics import ActivityMetrics, ActivityMetricsInbound
from contracts.metrics import PAYMENTS_STALLED, TOKEN_BUDGET, TOKEN_CALLS
from workflows.metrics import PaymentMetricsInbound

if TYPE_CHECKING:
    from providers.bkash_tokens import TokenManager

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


def token_call_counter(meter: MetricMeter, account: str,
                       budgets: TokenBudgets | None = None) -> Callable[[str, str], None]:
    """bKash grant/refresh calls by account and outcome (the budget is two an hour); with
    ``budgets``, the account's budget gauge follows each call at once."""
    counter = meter.create_counter(TOKEN_CALLS, "bKash grant/refresh calls, by outcome")

    def record(operation: str, outcome: str) -> None:
        counter.add(1, {"account": account, "operation": operation, "outcome": outcome})
        if budgets is not None:
            budgets.update(account)

    return record


class TokenBudgets:
    """``bkash_token_budget_remaining{account}``: grant/refresh calls left of the two per rolling
    hour, as each account's token manager knows it. Set after every token call, and every
    ``interval`` seconds by ``kept_current`` (calls age out of the hour; other processes sharing
    the token store spend the same budget). Every worker reports its view: alert on ``min``."""

    def __init__(self, meter: MetricMeter) -> None:
        self._gauge = meter.create_gauge(TOKEN_BUDGET, "bKash grant/refresh calls left in the "
                                         "rolling hour (bKash blocks the merchant after 2)")
        self._managers: dict[str, TokenManager] = {}

    def watch(self, account: str, tokens: TokenManager) -> None:
        self._managers[account] = tokens
        self.update(account)

    def update(self, account: str) -> None:
        tokens = self._managers.get(account)
        left = tokens.token_calls_left if tokens is not None else None
        if left is not None:
            self._gauge.set(left, {"account": account})

    async def refresh(self) -> None:
        for account, tokens in list(self._managers.items()):
            await tokens.learn_stored_calls()
            self.update(account)

    @contextlib.asynccontextmanager
    async def kept_current(self, interval: float = 15.0) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await self.refresh()
                await asyncio.sleep(interval)

        task = asyncio.create_task(loop(), name="bkash token budget gauge")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task



def stalled_gauge(meter: MetricMeter) -> Callable[[str, int], None]:
    """``payments_stalled{stage}``: running payments resting in a stage that should last seconds
    (CAPTURING, VOIDING, REFUNDING) for longer than PAYMENTS_STALL_AFTER_SECONDS. Every worker
    counts the whole namespace: alert on ``max`` across workers."""
    gauge = meter.create_gauge(PAYMENTS_STALLED, "payments resting in a stage longer than the "
                               "stall threshold (PAYMENTS_STALL_AFTER_SECONDS), by stage")

    def record(stage: str, count: int) -> None:
        gauge.set(count, {"stage": stage})

    return record
