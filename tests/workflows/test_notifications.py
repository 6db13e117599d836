"""Issue 13 §1: signed notifications, at least once, never in the payment's way.

The merchant's receiver is a real HTTP server on loopback; the worker's delivery activity signs and
POSTs to it. On the time-skipping server, six hours of HTTP 500 pass in seconds."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activities.notifications import NotificationActivities
from contracts.bkash import BkashStage
from contracts.notifications import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    DeliveryState,
    EventType,
    StreamState,
    signature_header,
    stream_id_for,
)
from embedded import serve_asgi
from merchant_client.notifications import (
    SignatureError,
    notifications_of,
    replay_event,
    verify_notification,
)
from providers.webhooks import WebhookEndpoint
from tests.conftest import running_stack
from workflows.search_attributes import NOTIFICATIONS_UNDELIVERED
from tests.support.bkash import pay, pay_and_capture, record_history, result

SECRET = "orders-endpoint-secret-0123456789abcdef"
OLD_SECRET = "orders-endpoint-secret-before-rotation-42"


class Receiver:
    """The merchant's order system: answers ``status`` and keeps every request it was sent."""

    def __init__(self) -> None:
        self.status = 500
        self.requests: list[tuple[int, bytes, dict[str, str]]] = []

        async def hook(request: Request) -> Response:
            body = await request.body()
            self.requests.append((self.status, body, dict(request.headers)))
            return Response(status_code=self.status)

        self.app = Starlette(routes=[Route("/hooks/payments", hook, methods=["POST"])])

    def delivered(self) -> list[tuple[bytes, dict[str, str]]]:
        return [(b, h) for s, b, h in self.requests if 200 <= s < 300]


@pytest.fixture
async def notified(ts_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    receiver = Receiver()
    async with serve_asgi(receiver.app) as url:
        endpoint = WebhookEndpoint(id="orders", url=f"{url}/hooks/payments",
                                   secrets=[SecretStr(SECRET), SecretStr(OLD_SECRET)])
        notify = NotificationActivities(http, {"orders": endpoint}, budget=timedelta(days=3))
        acts = [a for a in shared_activities
                if getattr(a, "__name__", "") not in ("notification_plan", "deliver_notification")]
        async with running_stack(ts_env, bkash_sandbox_url, monetix_sandbox_url, http,
                                 [*acts, notify.notification_plan, notify.deliver_notification],
                                 ) as stack:
            yield stack, receiver


async def skip(env, span: timedelta, step: timedelta = timedelta(minutes=10)) -> None:
    # In steps: the test server moves on to each retry's time only between them.
    while span > timedelta(0):
        await env.sleep(min(step, span))
        span -= step


async def stream_state(env, stack, stream_id: str, *, within: timedelta = timedelta(hours=2),
                       step: timedelta = timedelta(minutes=5),
                       saved_as: str = "notification_stream") -> StreamState:
    """The stream's final state, moving time on (at most ``within``) until it closes."""
    handle = stack.client.get_workflow_handle(stream_id, result_type=StreamState)
    for _ in range(int(within / step)):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await env.sleep(step)
    state = await handle.result()
    await record_history(handle, saved_as)
    return state


async def test_events_reach_a_receiver_down_for_six_hours_and_the_payment_finishes_on_time(
        ts_env, notified):
    stack, receiver = notified
    # The order system is down, and the payment completes anyway, on time.
    req, url, res = await pay_and_capture(stack)
    assert res.stage is BkashStage.CAPTURED
    payment = await stack.client.get_workflow_handle(url.workflow_id).describe()
    assert payment.close_time - payment.start_time < timedelta(minutes=1)
    assert receiver.requests and not receiver.delivered()

    await skip(ts_env, timedelta(hours=6))
    stream = await stack.client.get_workflow_handle(stream_id_for(url.workflow_id)).describe()
    assert stream.status == WorkflowExecutionStatus.RUNNING and not receiver.delivered()
    receiver.status = 200
    state = await stream_state(ts_env, stack, stream_id_for(url.workflow_id))

    assert [r.event.type for r in state.events] == [
        EventType.BKASH_AWAITING_APPROVAL, EventType.BKASH_AUTHORIZED, EventType.BKASH_CAPTURED]
    assert {r.state for r in state.events} == {DeliveryState.DELIVERED}
    got = [verify_notification(body, headers[SIGNATURE_HEADER.lower()], SECRET)
           for body, headers in receiver.delivered()]
    by_id = {e.event_id: e for e in got}
    assert len(by_id) == 3
    # Retries of one event are duplicates sharing its event_id; sequence orders the payment's.
    all_ids = [json.loads(body)["event_id"] for _, body, _ in receiver.requests]
    assert len(all_ids) > len(set(all_ids)) == 3
    assert all(h[EVENT_ID_HEADER.lower()] == json.loads(b)["event_id"]
               for _, b, h in receiver.requests)
    ordered = sorted(by_id.values(), key=lambda e: e.sequence)
    assert [e.sequence for e in ordered] == [1, 2, 3]
    assert [e.type for e in ordered] == [EventType.BKASH_AWAITING_APPROVAL,
                                         EventType.BKASH_AUTHORIZED, EventType.BKASH_CAPTURED]
    first, _, captured = ordered
    assert first.bkash_url == url.bkash_url and first.payment_key == url.workflow_id
    assert captured.amount_poisha == req.amount_poisha and captured.trx_id == res.trx_id
    assert captured.provider_payment_id == url.payment_id and captured.stage == "CAPTURED"
    # Rotation: the receiver still holding the previous secret verifies too.
    body, headers = receiver.delivered()[0]
    verify_notification(body, headers[SIGNATURE_HEADER.lower()], [OLD_SECRET])
    assert SECRET not in str(state.model_dump()) and SECRET.encode() not in body
    assert (await notifications_of(stack.client, url.workflow_id)).events == state.events


async def test_an_event_undelivered_after_the_budget_is_listed_and_replayed_with_its_event_id(
        ts_env, notified):
    stack, receiver = notified
    req, url = await pay(stack)
    await ts_env.sleep(timedelta(minutes=16))  # never approved: expires
    assert (await result(stack, req)).stage is BkashStage.EXPIRED
    # the whole budget of HTTP 500
    state = await stream_state(ts_env, stack, stream_id_for(url.workflow_id),
                               within=timedelta(days=3, hours=2), step=timedelta(hours=1))
    assert [r.state for r in state.events] == [DeliveryState.UNDELIVERED] * 2
    # The Web UI's column (the listing itself is the dev server's: tests/e2e/test_notify_cli.py).
    desc = await stack.client.get_workflow_handle(stream_id_for(url.workflow_id)).describe()
    assert desc.typed_search_attributes.get(NOTIFICATIONS_UNDELIVERED) == 2
    assert [r.event.event_id for r in state.undelivered] == [r.event.event_id
                                                             for r in state.events]

    receiver.status = 200
    expired = state.events[1].event
    replay_id = await replay_event(stack.client, expired.event_id)
    replayed = await stream_state(ts_env, stack, replay_id, saved_as="notification_replay")
    assert [r.state for r in replayed.events] == [DeliveryState.DELIVERED]
    body, headers = receiver.delivered()[-1]
    event = verify_notification(body, headers[SIGNATURE_HEADER.lower()], SECRET)
    assert (event.event_id, event.type, event.sequence) == (expired.event_id,
                                                            EventType.BKASH_EXPIRED, 2)


def test_the_verifier_refuses_a_tampered_body_an_old_timestamp_and_another_secret():
    body = b'{"event_id":"bkash-INV-1/1","type":"bkash.captured"}'
    now = int(time.time())
    header = signature_header(body, [SECRET], now)
    with pytest.raises(SignatureError, match="does not match"):
        verify_notification(body.replace(b"captured", b"voided"), header, SECRET, now=now)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_notification(body, signature_header(body, [SECRET], now - 301), SECRET, now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify_notification(body, header, "another-secret-of-enough-length-000", now=now)
    with pytest.raises(SignatureError, match="missing"):
        verify_notification(body, None, SECRET, now=now)
    with pytest.raises(SignatureError, match="t=<unix seconds>"):
        verify_notification(body, "v1=abc", SECRET, now=now)
