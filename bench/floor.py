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
      notify awaiting_approval                  notify awaiting_approval
      timer: approval window                    timer: approval window
    update customer_returned (endpoint)       update customer_returned (driver)
      EXECUTING, execute_payment, AUTHORIZED    EXECUTING, noop, AUTHORIZED
      notify authorized                         notify authorized
      timer: hold deadline                      timer: hold deadline
    update service_delivered                  update service_delivered
      CAPTURING, capture_payment, CAPTURED      CAPTURING, noop, CAPTURED
      notify captured (closes the stream)       notify captured (closes the stream)

``FloorGatePurchase`` mirrors ``MonetixGatePurchase`` (success): sale, the instructions callback
(sent by the driver while the sale is in flight, as the sandbox sends it while answering the sale),
submit_transaction_id, clarification, the final callback.

Notifications are part of a payment's cost, so the floor sends the same ones: at the same
transitions, the same events (bKash: awaiting_approval, authorized, captured; Monetix:
instructions_ready, success) through the project's own ``Notifier`` — the same local activity
``publish_notification`` (signal-with-start) to the same ``NotificationStream`` workflow, which
asks for the plan (``notification_plan``) and delivers to the endpoints the worker has (none in the
bench: ``bench.run.worker_env`` passes no PAYMENTS_NOTIFY_*, for the payments worker as for this).

Nothing here is used by the project; the module stays import-light because the workflow sandbox
re-imports it for every run, exactly as it does ``workflows/bkash.py`` (what the floor borrows from
the project is passed through, so the floor's own workflow code stays as small as it can be).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities, NotificationPublisher
    from contracts.common import Provider
    from contracts.notifications import PUBLISH_ACTIVITY, EventType, PublishInput
    from workflows import search_attributes as sa
    from workflows.notification_stream import NotificationStream
    from workflows.notifications import Notifier


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


@activity.defn(name=PUBLISH_ACTIVITY)
async def publish_notification(item: PublishInput) -> None:
    """The payments worker's own publish activity (signal-with-start of the stream), with the
    worker's client."""
    await NotificationPublisher(activity.client()).publish_notification(item)


# The stream's activities as the payments worker has them in the bench: no endpoint configured, so
# the plan lists none and nothing is delivered (an HTTP client is never needed).
_NOTIFY = NotificationActivities(None, {})  # type: ignore[arg-type]
ACTIVITIES = [floor_noop, publish_notification, _NOTIFY.notification_plan,
              _NOTIFY.deliver_notification]
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                     maximum_attempts=8)


# A bKash page URL of the sandbox's length: the awaiting_approval event carries one.
_BKASH_URL = "http://127.0.0.1:40000/checkout/?paymentId=TR0011floor{key}&hash=f100rf100rf100r"


class _Floor:
    def _init(self, req: FloorRequest, stage: str, provider: Provider) -> None:
        self._req = req
        self._stage = stage
        self._notes = Notifier(provider=provider, invoice_number=req.key)

    def _notify(self, type: EventType, *, last: bool = False, **fields: object) -> None:
        """The event the real workflow emits at this transition, with fields of the same shape."""
        self._notes.emit(type, stage=self._stage, last=last, amount_poisha=self._req.amount_poisha,
                         provider_payment_id=f"floor-{self._req.key}", **fields)

    async def _call(self, step: str) -> None:
        await workflow.execute_activity(
            floor_noop, step, start_to_close_timeout=self._req.provider_timeout * 2
            + timedelta(seconds=5), retry_policy=_RETRY, summary=step)

    def _set_stage(self, stage: str, *, show: bool = True, with_id: bool = False) -> None:
        """The real workflows' upsert rule (workflows/bookkeeping.py): a stage that lasts one
        bounded call is not shown (``show=False``), and the provider's id goes with the first
        upsert that knows it (``with_id``), never again."""
        changed = stage != self._stage
        self._stage = stage
        if changed and show:
            pairs = [sa.PAYMENT_STAGE.value_set(stage)]
            if with_id:
                pairs.append(sa.PROVIDER_PAYMENT_ID.value_set(f"floor-{self._req.key}"))
            workflow.upsert_search_attributes(pairs)
        workflow.set_current_details(f"**{stage}** · floor · {self._req.key}")


@workflow.defn
class FloorAuthCapture(_Floor):
    @workflow.init
    def __init__(self, req: FloorRequest) -> None:
        self._init(req, "CREATING", Provider.BKASH)
        self._returned = False
        self._decided = False

    @workflow.run
    async def run(self, req: FloorRequest) -> FloorAck:
        await self._call("create")
        self._set_stage("AWAITING_APPROVAL", with_id=True)
        self._notify(EventType.BKASH_AWAITING_APPROVAL, bkash_url=_BKASH_URL.format(key=req.key))
        try:
            await workflow.wait_condition(lambda: self._returned, timeout=req.first_window,
                                          timeout_summary="approval window")
        except asyncio.TimeoutError:
            pass
        self._set_stage("EXECUTING", show=False)
        await self._call("execute")
        self._set_stage("AUTHORIZED")
        self._notify(EventType.BKASH_AUTHORIZED, trx_id="FLOOR00000")
        try:
            await workflow.wait_condition(lambda: self._decided, timeout=req.second_window,
                                          timeout_summary="hold deadline")
        except asyncio.TimeoutError:
            pass
        self._set_stage("CAPTURING")
        await self._call("capture")
        self._set_stage("CAPTURED")
        self._notify(EventType.BKASH_CAPTURED, last=True, trx_id="FLOOR00000",
                     detail=f"captured 500.00 BDT, trxID FLOOR00000 · {req.key}")
        await self._notes.close()
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
        self._init(req, "SALE", Provider.MONETIX)
        self._instructions = False
        self._transaction_id = False
        self._final = False

    @workflow.run
    async def run(self, req: FloorRequest) -> FloorAck:
        self._set_stage("SALE")
        await self._call("sale")
        # Shown only while the instructions are really awaited (usually they came with the sale).
        self._set_stage("AWAITING_INSTRUCTIONS", show=not (self._instructions or self._final))
        try:
            await workflow.wait_condition(lambda: self._instructions or self._final,
                                          timeout=req.first_window,
                                          timeout_summary="payment instructions")
        except asyncio.TimeoutError:
            pass
        self._set_stage("AWAITING_TRANSACTION_ID")
        self._notify(EventType.MONETIX_INSTRUCTIONS_READY)
        try:
            await workflow.wait_condition(lambda: self._transaction_id or self._final,
                                          timeout=req.second_window,
                                          timeout_summary="transaction ID window")
        except asyncio.TimeoutError:
            pass
        self._set_stage("CLARIFYING", show=False)
        await self._call("clarification")
        if not self._final:
            self._set_stage("AWAITING_RESULT")
            try:
                await workflow.wait_condition(lambda: self._final, timeout=req.final_wait,
                                              timeout_summary="final result")
            except asyncio.TimeoutError:
                pass
        self._set_stage("SUCCESS", with_id=True)
        self._notify(EventType.MONETIX_SUCCESS, last=True, paid_poisha=req.amount_poisha,
                     detail="paid 1000.00 BDT")
        await self._notes.close()
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


# The stream runs on the floor's task queue, like a payment's on the payments worker's.
WORKFLOWS = [FloorAuthCapture, FloorGatePurchase, NotificationStream]
