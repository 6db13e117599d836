"""The floor: what the payment workflows cost when the project's own work is taken away.

``FloorAuthCapture`` and ``FloorGatePurchase`` make exactly the commands their real counterparts make
on the happy path — the same activities (in the same order, with the same timeouts), the same
timers (the implicit timers of ``wait_condition(timeout=...)``), the same updates (one of them with
start), the same search-attribute upserts and current-details — but every activity returns at once,
and nothing is validated, formatted or recorded. Run on the same dev server as the real workflows,
with the same worker options, they measure the cost of Temporal itself.

    real BkashAuthCapture (captured)          FloorAuthCapture
    update-with-start approval_url            update-with-start approval_url
      create_payment → AWAITING_APPROVAL        noop → AWAITING_APPROVAL (upsert)
      timer: approval window                    timer: approval window
    update customer_returned (endpoint)       update customer_returned (driver)
      EXECUTING, execute_payment, AUTHORIZED    EXECUTING, noop, AUTHORIZED
      timer: hold deadline                      timer: hold deadline
    update service_delivered                  update service_delivered
      CAPTURING, capture_payment, CAPTURED      CAPTURING, noop, CAPTURED

``FloorGatePurchase`` mirrors ``MonetixGatePurchase`` (success): sale, the instructions callback
(sent by the driver while the sale is in flight, as the sandbox sends it while answering the sale),
submit_transaction_id, clarification, the final callback.

Nothing here is used by the project; the module stays import-light because the workflow sandbox
re-imports it for every run, exactly as it does ``workflows/bkash.py``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa


class FloorRequest(BaseModel):
    key: str
    amount_poisha: int = 50000
    provider_timeout: timedelta = timedelta(seconds=30)
    first_window: timedelta = timedelta(minutes=15)   # approval window / instructions wait
    second_window: timedelta = timedelta(hours=24)    # hold deadline / transaction ID window
    final_wait: timedelta = timedelta(minutes=2)      # Monetix: final callback wait


class FloorAck(BaseModel):
    stage: str


@activity.defn
async def floor_noop(step: str) -> str:
    """Stands for one provider call; does nothing."""
    return step


ACTIVITIES = [floor_noop]
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                     maximum_attempts=8)


class _Floor:
    def _init(self, req: FloorRequest, stage: str) -> None:
        self._req = req
        self._stage = stage

    async def _call(self, step: str) -> None:
        await workflow.execute_activity(
            floor_noop, step, start_to_close_timeout=self._req.provider_timeout * 2
            + timedelta(seconds=5), retry_policy=_RETRY, summary=step)

    def _set_stage(self, stage: str, *, both: bool = True) -> None:
        changed = stage != self._stage
        self._stage = stage
        if changed:
            pairs = [sa.PAYMENT_STAGE.value_set(stage)]
            if both:
                pairs.append(sa.PROVIDER_PAYMENT_ID.value_set(f"floor-{self._req.key}"))
            workflow.upsert_search_attributes(pairs)
        workflow.set_current_details(f"**{stage}** · floor · {self._req.key}")


@workflow.defn
class FloorAuthCapture(_Floor):
    @workflow.init
    def __init__(self, req: FloorRequest) -> None:
        self._init(req, "CREATING")
        self._returned = False
        self._decided = False

    @workflow.run
    async def run(self, req: FloorRequest) -> FloorAck:
        await self._call("create")
        self._set_stage("AWAITING_APPROVAL")
        try:
            await workflow.wait_condition(lambda: self._returned, timeout=req.first_window,
                                          timeout_summary="approval window")
        except asyncio.TimeoutError:
            pass
        self._set_stage("EXECUTING")
        await self._call("execute")
        self._set_stage("AUTHORIZED")
        try:
            await workflow.wait_condition(lambda: self._decided, timeout=req.second_window,
                                          timeout_summary="hold deadline")
        except asyncio.TimeoutError:
            pass
        self._set_stage("CAPTURING")
        await self._call("capture")
        self._set_stage("CAPTURED")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return FloorAck(stage=self._stage)

    @workflow.update
    async def approval_url(self) -> FloorAck:
        await workflow.wait_condition(lambda: self._stage != "CREATING")
        return FloorAck(stage=self._stage)

    @workflow.update
    async def customer_returned(self) -> FloorAck:
        self._returned = True
        await workflow.wait_condition(lambda: self._stage == "AUTHORIZED")
        return FloorAck(stage=self._stage)

    @workflow.update
    def service_delivered(self) -> FloorAck:
        self._decided = True
        return FloorAck(stage=self._stage)


@workflow.defn
class FloorGatePurchase(_Floor):
    @workflow.init
    def __init__(self, req: FloorRequest) -> None:
        self._init(req, "SALE")
        self._instructions = False
        self._transaction_id = False
        self._final = False

    @workflow.run
    async def run(self, req: FloorRequest) -> FloorAck:
        self._set_stage("SALE", both=False)
        await self._call("sale")
        self._set_stage("AWAITING_INSTRUCTIONS", both=False)
        try:
            await workflow.wait_condition(lambda: self._instructions or self._final,
                                          timeout=req.first_window,
                                          timeout_summary="payment instructions")
        except asyncio.TimeoutError:
            pass
        self._set_stage("AWAITING_TRANSACTION_ID", both=False)
        try:
            await workflow.wait_condition(lambda: self._transaction_id or self._final,
                                          timeout=req.second_window,
                                          timeout_summary="transaction ID window")
        except asyncio.TimeoutError:
            pass
        self._set_stage("CLARIFYING", both=False)
        await self._call("clarification")
        if not self._final:
            self._set_stage("AWAITING_RESULT", both=False)
            try:
                await workflow.wait_condition(lambda: self._final, timeout=req.final_wait,
                                              timeout_summary="final result")
            except asyncio.TimeoutError:
                pass
        self._set_stage("SUCCESS", both=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return FloorAck(stage=self._stage)

    @workflow.update
    async def payment_instructions(self) -> FloorAck:
        await workflow.wait_condition(lambda: self._stage == "AWAITING_TRANSACTION_ID")
        return FloorAck(stage=self._stage)

    @workflow.update
    def provider_callback(self, final: bool) -> FloorAck:
        if final:
            self._final = True
        else:
            self._instructions = True
        return FloorAck(stage=self._stage)

    @workflow.update
    def submit_transaction_id(self) -> FloorAck:
        self._transaction_id = True
        return FloorAck(stage=self._stage)


WORKFLOWS = [FloorAuthCapture, FloorGatePurchase]
