"""Merchant notifications from the merchant's side (README "Notifications"): verify what arrives,
see what did not arrive, send one again.

    from merchant_client.notifications import verify_notification
    event = verify_notification(request_body, request.headers["Payments-Signature"], SECRETS)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from contracts.common import SearchAttribute
from contracts.notifications import (
    DEFAULT_TOLERANCE_SECONDS,
    STREAM_QUERY,
    STREAM_WORKFLOW,
    EventRecord,
    NotificationEvent,
    SignatureError,
    StreamStart,
    StreamState,
    stream_id_for,
    stream_of,
    verify_signature,
)
from merchant_client.connection import PaymentError, explain_rpc_error

__all__ = ["SignatureError", "notifications_of", "replay_event", "undelivered_events",
           "verify_notification"]


def verify_notification(body: bytes, signature: str | None, secrets: str | Iterable[str], *,
                        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
                        now: float | None = None) -> NotificationEvent:
    """The event in ``body`` once its ``Payments-Signature`` checks out with one of ``secrets``
    (constant time) and its timestamp is within ``tolerance_seconds`` of now; else SignatureError.
    Pass the raw body as received: a re-serialised JSON would not match."""
    verify_signature(body, signature, secrets, tolerance_seconds=tolerance_seconds, now=now)
    try:
        return NotificationEvent.model_validate_json(body)
    except ValueError as err:
        raise SignatureError(f"the signed body is not a notification event: {err}") from None


async def _stream_state(client: Client, stream_id: str) -> StreamState:
    handle = client.get_workflow_handle(stream_id, result_type=StreamState)
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
        return await handle.query(STREAM_QUERY, result_type=StreamState)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentError(f"no notifications for {stream_id.removeprefix('notify:')} "
                               "(no event yet, or sent before notifications existed)") from None
        raise explain_rpc_error(err, "notifications", client) or err from None


async def notifications_of(client: Client, payment_workflow_id: str) -> StreamState:
    """Every event of one payment (refund ledger, reconciliation) and where each was delivered."""
    return await _stream_state(client, stream_id_for(payment_workflow_id))


async def undelivered_events(client: Client) -> list[EventRecord]:
    """Events whose delivery budget ran out (search attribute NotificationsUndelivered > 0)."""
    query = (f"WorkflowType = '{STREAM_WORKFLOW}' AND "
             f"{SearchAttribute.NOTIFICATIONS_UNDELIVERED.value} > 0")
    found: list[EventRecord] = []
    try:
        streams = [wf.id async for wf in client.list_workflows(query)]
    except RPCError as err:
        raise explain_rpc_error(err, "notifications", client) or err from None
    for stream_id in streams:
        found += (await _stream_state(client, stream_id)).undelivered
    return sorted(found, key=lambda r: (r.event.occurred_at, r.event.event_id))


async def replay_event(client: Client, event_id: str, *, task_queue: str | None = None) -> str:
    """Send one event again, same ``event_id`` (receivers drop duplicates by it), to every endpoint
    the worker has now; returns the id of the replay's stream workflow."""
    try:
        stream_id = stream_of(event_id)
    except ValueError as err:
        raise PaymentError(str(err)) from None
    state = await _stream_state(client, stream_id)
    record = next((r for r in state.events if r.event.event_id == event_id), None)
    if record is None:
        raise PaymentError(f"event_id {event_id!r}: no such event in {stream_id} (it holds "
                           f"{len(state.events)} events)")
    if task_queue is None:
        desc = await client.get_workflow_handle(stream_id).describe()
        task_queue = desc.task_queue
    replay_id = f"notify-replay:{event_id}:{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        STREAM_WORKFLOW, StreamStart(stream_id=replay_id, first=record.event, last=True,
                                     replay_of=event_id),
        id=replay_id, task_queue=task_queue,
        static_summary=f"replay of notification {event_id}")
    return replay_id
