"""NotificationStream: one payment's (refund ledger's, reconciliation's) events, delivered at least
once to every endpoint the worker has, each with its own retries for the budget (3 days by
default), independently of each other and of the payment (workflows/notifications.py says why a
child per payment).

An event whose budget runs out is UNDELIVERED: the stream's search attribute
``NotificationsUndelivered`` counts them (Web UI, ``starter.py events --undelivered``) and
``events replay <event_id>`` sends it again, same ``event_id``, in a stream of its own.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from contracts.notifications import (
    EVENT_SIGNAL,
    STREAM_QUERY,
    STREAM_WORKFLOW,
    Delivery,
    DeliveryInput,
    DeliveryReceipt,
    DeliveryState,
    EventRecord,
    NotificationEvent,
    NotificationPlan,
    PublishInput,
    StreamStart,
    StreamState,
)
from workflows import search_attributes as sa
from workflows.bookkeeping import error_message

PLAN_ACTIVITY = "notification_plan"
DELIVER_ACTIVITY = "deliver_notification"
# The merchant's server answers within this, or the attempt counts as failed.
ATTEMPT_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=STREAM_WORKFLOW)
class NotificationStream:
    @workflow.init
    def __init__(self, start: StreamStart) -> None:
        self._state = StreamState(stream_id=start.stream_id)
        self._new: list[NotificationEvent] = []
        self._seen: set[str] = set()
        self._closed = start.last
        self._undelivered = 0
        if start.first is not None:
            self._add(start.first)

    @workflow.run
    async def run(self, start: StreamStart) -> StreamState:
        plan = await workflow.execute_activity(
            PLAN_ACTIVITY, result_type=NotificationPlan, start_to_close_timeout=timedelta(seconds=30),
            summary="the worker's notification endpoints")
        deliveries: list[asyncio.Task] = []
        while True:
            await workflow.wait_condition(lambda: bool(self._new) or self._closed)
            while self._new:
                record = self._record(self._new.pop(0), plan)
                for delivery in record.deliveries:
                    deliveries.append(asyncio.create_task(self._deliver(plan, record, delivery)))
            self._show()
            if self._closed and not self._new:
                break
        await asyncio.gather(*deliveries)
        self._state.closed = True
        self._show()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    @workflow.signal(name=EVENT_SIGNAL)
    def event(self, item: PublishInput) -> None:
        if item.event is not None:
            self._add(item.event)
        self._closed = self._closed or item.close

    @workflow.query(name=STREAM_QUERY)
    def notifications(self) -> StreamState:
        return self._state

    def _add(self, event: NotificationEvent) -> None:
        if event.event_id in self._seen:  # a publish retried after its answer was lost
            return
        self._seen.add(event.event_id)
        self._new.append(event)

    def _record(self, event: NotificationEvent, plan: NotificationPlan) -> EventRecord:
        record = EventRecord(event=event, deliveries=[Delivery(endpoint=e) for e in plan.endpoints]
                             or [Delivery(endpoint="-", state=DeliveryState.NO_ENDPOINT)])
        self._state.events.append(record)
        return record

    async def _deliver(self, plan: NotificationPlan, record: EventRecord,
                       delivery: Delivery) -> None:
        if delivery.state is DeliveryState.NO_ENDPOINT:
            return
        try:
            receipt = await workflow.execute_activity(
                DELIVER_ACTIVITY, DeliveryInput(endpoint=delivery.endpoint, event=record.event),
                result_type=DeliveryReceipt, start_to_close_timeout=ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=plan.budget,
                retry_policy=RetryPolicy(initial_interval=plan.first_retry, backoff_coefficient=2.0,
                                         maximum_interval=plan.max_retry_interval,
                                         maximum_attempts=0,
                                         non_retryable_error_types=["NotificationEndpointUnknown"]),
                summary=f"{record.event.type.value} #{record.event.sequence} to "
                        f"{delivery.endpoint}")
        except ActivityError as err:
            delivery.state = DeliveryState.UNDELIVERED
            delivery.last_error = _last_failure(err)
            delivery.at = workflow.now()
            self._undelivered += 1
            workflow.upsert_search_attributes(
                [sa.NOTIFICATIONS_UNDELIVERED.value_set(self._undelivered)])
        else:
            delivery.state = DeliveryState.DELIVERED
            delivery.attempts = receipt.attempt
            delivery.at = workflow.now()
        self._show()

    def _show(self) -> None:
        events = self._state.events
        counts = {s: sum(1 for r in events if r.state is s) for s in DeliveryState}
        lines = [f"**{len(events)} events** of {self._state.stream_id.removeprefix('notify:')}: "
                 f"{counts[DeliveryState.DELIVERED]} delivered, "
                 f"{counts[DeliveryState.PENDING]} being delivered, "
                 f"{counts[DeliveryState.UNDELIVERED]} undelivered"
                 + (f", {counts[DeliveryState.NO_ENDPOINT]} with no endpoint configured"
                    if counts[DeliveryState.NO_ENDPOINT] else "")]
        if events:
            last = events[-1]
            lines.append(f"latest: #{last.event.sequence} {last.event.type.value} "
                         f"({last.state.value})")
        workflow.set_current_details("\n\n".join(lines))


def _last_failure(err: ActivityError) -> str:
    """What the receiver last did ("answered HTTP 500"), not only that the budget ran out."""
    cause, last = err.cause, None
    while cause is not None:
        if isinstance(cause, ApplicationError):
            last = cause.message
        cause = cause.cause
    if isinstance(err.cause, TimeoutError):
        return f"delivery budget ran out; last attempt: {last or err.cause.message}"
    return last or error_message(err)
