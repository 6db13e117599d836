"""Workflow code for tests/workflows/test_safe_change.py: a plausible change to BkashAuthCapture,
once behind ``workflow.patched`` and once without. In a module of its own because the workflow
sandbox re-imports the module that defines a workflow, and it must have no side effects."""

from __future__ import annotations

from temporalio import workflow

from workflows.bkash import BkashAuthCapture
from contracts.bkash import BkashPaymentRequest, BkashPaymentResult, BkashStage


def _capture_with_extra_check(patched: bool):
    """A plausible change: ask bKash where the payment stands before capturing."""

    async def _capture(self) -> BkashStage:
        if not patched or workflow.patched("query-before-capture"):
            status = await self._query("before capture")
            if status.transaction_status != "Authorized":
                return self._accept_status(status, "query")
        return await BkashAuthCapture._capture(self)

    return _capture


@workflow.defn(name="BkashAuthCapture")
class PatchedBkashAuthCapture(BkashAuthCapture):
    _capture = _capture_with_extra_check(patched=True)

    @workflow.run
    async def run(self, req: BkashPaymentRequest) -> BkashPaymentResult:
        return await super().run(req)


@workflow.defn(name="BkashAuthCapture")
class UnpatchedBkashAuthCapture(BkashAuthCapture):
    _capture = _capture_with_extra_check(patched=False)

    @workflow.run
    async def run(self, req: BkashPaymentRequest) -> BkashPaymentResult:
        return await super().run(req)


