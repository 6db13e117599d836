"""The sending side of merchant notifications, used by every lifecycle workflow.

Delivery never blocks or fails a payment (issue 13 §1). A payment's events go to a workflow of
their own, ``NotificationStream`` (id ``notify:<payment workflow id>``), which delivers them with
retries for days; the payment only hands each event to Temporal — a local activity doing
signal-with-start, milliseconds — and never waits for the merchant's server.

Why a stream per payment, started by signal-with-start: one workflow per payment isolates payments
from each other (a per-merchant workflow would be one history every payment writes to), and it is
no child of the payment, so it simply outlives it (a child abandoned by its closed parent works
too on a real server, but not on the time-skipping test server the proofs run on). Signal-with-
start needs no bookkeeping of whether the stream exists yet, and the local activity costs the
payment's history one marker per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from contracts.common import Provider
from contracts.notifications import (
    PUBLISH_ACTIVITY,
    EventType,
    NotificationEvent,
    PublishInput,
    event_id_for,
    stream_id_for,
)

# Payments recorded before notifications existed (and their saved histories) send none.
NOTIFY_MERCHANT = "notify-merchant"
# Handing an event to Temporal is retried until it is taken: a payment's event is never dropped.
PUBLISH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                            maximum_interval=timedelta(seconds=30), maximum_attempts=0)


class Notifier:
    """One workflow's notification stream: ``emit`` from any step or handler (it never waits),
    ``await close()`` before the workflow returns."""

    def __init__(self, *, provider: Provider, payment_key: str | None = None,
                 invoice_number: str | None = None, account_id: str = "default",
                 on_problem: Callable[[str], None] | None = None) -> None:
        self._stream_id = stream_id_for(workflow.info().workflow_id)
        self._provider = provider
        self._payment_key = payment_key or workflow.info().workflow_id
        self._invoice = invoice_number
        self._account = account_id
        self._on_problem = on_problem or (lambda _text: None)
        self._enabled: bool | None = None
        self._sequence = 0
        self._queue: list[PublishInput] = []
        self._sender: asyncio.Task | None = None
        self._closed = False

    @property
    def sequence(self) -> int:
        return self._sequence

    def emit(self, type: EventType, *, stage: str, last: bool = False,
             **fields: object) -> NotificationEvent | None:
        """Queue one event (``fields``: NotificationEvent's amounts and ids); ``last`` closes the
        stream after it."""
        if self._closed:
            return None
        if self._enabled is None:
            self._enabled = workflow.patched(NOTIFY_MERCHANT)
        if not self._enabled:
            return None
        self._sequence += 1
        # ``fields`` may name another payment (a reconciliation's divergence is about one).
        event = NotificationEvent.model_validate({
            "payment_key": self._payment_key, "invoice_number": self._invoice,
            "account_id": self._account, "provider": self._provider, **fields,
            "event_id": event_id_for(self._stream_id, self._sequence), "type": type,
            "sequence": self._sequence, "occurred_at": workflow.now(), "stage": stage})
        self._closed = last
        self._publish(PublishInput(stream_id=self._stream_id, event=event, close=last,
                                   summary=f"notify {type.value} #{self._sequence}"))
        return event

    async def close(self) -> None:
        """Tell the stream no more events come, and wait until Temporal took every one."""
        if self._sequence and not self._closed:
            self._publish(PublishInput(stream_id=self._stream_id, close=True,
                                       summary="notifications complete"))
        self._closed = True
        await workflow.wait_condition(
            lambda: not self._queue and (self._sender is None or self._sender.done()))

    def _publish(self, item: PublishInput) -> None:
        self._queue.append(item)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        # One at a time, in order: the stream sees the close after every event.
        while self._queue:
            item = self._queue[0]
            try:
                await workflow.execute_local_activity(
                    PUBLISH_ACTIVITY, item, start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=PUBLISH_RETRY, summary=item.summary)
            except Exception as err:  # noqa: BLE001 - the payment goes on whatever happens here
                self._on_problem(f"notification not handed to Temporal: {type(err).__name__}: "
                                 f"{err}")
            self._queue.pop(0)
