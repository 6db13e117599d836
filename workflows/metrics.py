"""Payments started and finished, counted by a workflow interceptor: no lifecycle code changes and no
command changes (metrics are not commands). The SDK drops metrics while a workflow replays, so a
payment is counted once, however often a worker rebuilds it.

Labels: workflow (the lifecycle's name), provider, account (search attributes set at start by the
merchant client) and, when it finishes, its final stage (the result's ``stage``)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.worker import ExecuteWorkflowInput, WorkflowInboundInterceptor

from contracts.common import SearchAttribute
from contracts.metrics import PAYMENTS_FINISHED, PAYMENTS_STARTED

_PROVIDER = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_PROVIDER.value)
_ACCOUNT = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_ACCOUNT.value)


def _labels() -> dict[str, str]:
    info = workflow.info()
    attrs = info.typed_search_attributes
    return {"workflow": info.workflow_type, "provider": attrs.get(_PROVIDER) or "unknown",
            "account": attrs.get(_ACCOUNT) or "default"}


class PaymentMetricsInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        meter = workflow.metric_meter()
        labels = _labels()
        meter.create_counter(PAYMENTS_STARTED, "payment workflows started").add(1, labels)
        result = await super().execute_workflow(input)
        # bKash results carry ``stage``, Monetix ones ``outcome``; a refunds ledger neither.
        stage = getattr(result, "stage", None) or getattr(result, "outcome", None)
        stage = getattr(stage, "value", stage) or "closed"
        meter.create_counter(PAYMENTS_FINISHED, "payment workflows finished, by final stage").add(
            1, {**labels, "stage": str(stage)})
        return result
