"""Payments started and finished, counted by a workflow interceptor, and refunds by final outcome,
counted by the refunds ledger: no command changes (metrics are not commands). The SDK drops metrics
while a workflow replays, so a payment or a refund is counted once, however often a worker rebuilds
it.

payments_started/finished count the payment workflows only (bKash auth-capture, Monetix Gate and
Payment Page: ``contracts.metrics.PAYMENT_WORKFLOWS``), never the refund ledgers, notification
streams or reconciliation runs around them. Labels: workflow (the lifecycle's name), provider,
account (search attributes set at start by the merchant client) and, when it finishes, its final
stage (the result's ``stage``, or ``outcome`` for Monetix)."""

from __future__ import annotations

from typing import Any, ClassVar

from temporalio import workflow
from temporalio.common import MetricCounter, SearchAttributeKey
from temporalio.worker import ExecuteWorkflowInput, WorkflowInboundInterceptor

from contracts.common import SearchAttribute
from contracts.metrics import PAYMENT_WORKFLOWS, PAYMENTS_FINISHED, PAYMENTS_STARTED, REFUNDS

_PROVIDER = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_PROVIDER.value)
_ACCOUNT = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_ACCOUNT.value)
_DESCRIPTIONS = {PAYMENTS_STARTED: "payment workflows started",
                 PAYMENTS_FINISHED: "payment workflows finished, by final stage"}


def _labels() -> dict[str, str]:
    info = workflow.info()
    attrs = info.typed_search_attributes
    return {"workflow": info.workflow_type, "provider": attrs.get(_PROVIDER) or "unknown",
            "account": attrs.get(_ACCOUNT) or "default"}


def count_refund(provider: str, outcome: str) -> None:
    """One refund reached its final outcome (SUCCEEDED or FAILED) in its ledger, however that was
    learnt: the bKash answer or refund status, the Monetix callback or status request. Called from
    workflow code; a replay of the ledger records nothing (the SDK's replay-safe meter). A counter
    made per refund is cheap next to the refund's own activities."""
    workflow.metric_meter().create_counter(
        REFUNDS, "refunds by provider and final outcome").with_additional_attributes(
            {"provider": provider, "outcome": outcome}).add(1)


class PaymentMetricsInbound(WorkflowInboundInterceptor):
    # Counters bound to their labels, kept across workflow runs by the class ``for_worker`` makes
    # (one per worker, so one per Runtime): otherwise every run creates two from a meter of its own.
    # The counters the SDK hands a workflow skip recording while *the current* workflow replays, so
    # one made in an earlier run is as replay-safe as a new one. The base class keeps none.
    _counters: ClassVar[dict[tuple[str, ...], MetricCounter] | None] = None

    @classmethod
    def for_worker(cls) -> type[PaymentMetricsInbound]:
        return type(cls.__name__, (cls,), {"_counters": {}})

    def _count(self, name: str, labels: dict[str, str]) -> None:
        info = workflow.info()
        key = (name, info.namespace, info.task_queue, *labels.values())
        counter = self._counters.get(key) if self._counters is not None else None
        if counter is None:
            counter = workflow.metric_meter().create_counter(
                name, _DESCRIPTIONS[name]).with_additional_attributes(labels)
            if self._counters is not None:
                self._counters[key] = counter
        counter.add(1)

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if workflow.info().workflow_type not in PAYMENT_WORKFLOWS:
            return await super().execute_workflow(input)
        labels = _labels()
        self._count(PAYMENTS_STARTED, labels)
        result = await super().execute_workflow(input)
        # bKash results carry ``stage``, Monetix ones ``outcome``.
        stage = getattr(result, "stage", None) or getattr(result, "outcome", None)
        stage = getattr(stage, "value", stage) or "closed"
        self._count(PAYMENTS_FINISHED, {**labels, "stage": str(stage)})
        return result
