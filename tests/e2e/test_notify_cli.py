"""Issue 13 §1, operable: on the dev server (its visibility lists), events whose budget ran out are
listed by `starter.py events --undelivered`, and `events replay <event_id>` sends one again with
the same event_id. The budget here is two seconds of real time; its days are
tests/workflows/test_notifications.py's."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from pydantic import SecretStr

from activities.notifications import NotificationActivities
from contracts.bkash import BkashStage
from contracts.notifications import SIGNATURE_HEADER, StreamState, stream_id_for
from embedded import serve_asgi
from merchant_client.notifications import verify_notification
from providers.webhooks import WebhookEndpoint
from starter import _main
from tests.conftest import running_stack
from tests.support.bkash import pay_and_capture
from tests.workflows.test_notifications import SECRET, Receiver


@pytest.fixture
async def short_budget(dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities,
                       monkeypatch):
    receiver = Receiver()
    async with serve_asgi(receiver.app) as url:
        endpoint = WebhookEndpoint(id="orders", url=f"{url}/hooks/payments",
                                   secrets=[SecretStr(SECRET)])
        notify = NotificationActivities(http, {"orders": endpoint}, budget=timedelta(seconds=2),
                                        first_retry=timedelta(milliseconds=300),
                                        max_retry_interval=timedelta(milliseconds=600))
        acts = [a for a in shared_activities
                if getattr(a, "__name__", "") not in ("notification_plan", "deliver_notification")]
        async with running_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http,
                                 [*acts, notify.notification_plan, notify.deliver_notification],
                                 ) as stack:
            monkeypatch.setenv("TEMPORAL_ADDRESS",
                               dev_env.client.service_client.config.target_host)
            monkeypatch.setenv("TEMPORAL_NAMESPACE", "default")
            monkeypatch.setenv("PAYMENTS_TASK_QUEUE", stack.settings.task_queue)
            yield stack, receiver


async def cli_rows(capsys, *argv: str) -> list[dict]:
    assert await _main(list(argv)) == 0, capsys.readouterr().err
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


async def test_undelivered_events_are_listed_and_one_is_replayed_with_its_event_id(
        short_budget, capsys):
    stack, receiver = short_budget
    req, url, res = await pay_and_capture(stack)
    assert res.stage is BkashStage.CAPTURED
    stream = stack.client.get_workflow_handle(stream_id_for(url.workflow_id),
                                              result_type=StreamState)
    state = await asyncio.wait_for(stream.result(), 30)
    assert [r.state.value for r in state.events] == ["UNDELIVERED"] * 3

    ours: list[dict] = []
    for _ in range(100):  # the visibility store catches up within moments
        ours = [r for r in await cli_rows(capsys, "events", "--undelivered")
                if r["payment_key"] == url.workflow_id]
        if len(ours) == 3:
            break
        await asyncio.sleep(0.1)
    assert [r["type"] for r in ours] == ["bkash.awaiting_approval", "bkash.authorized",
                                         "bkash.captured"]
    assert all(r["deliveries"][0]["state"] == "UNDELIVERED" and
               "HTTP 500" in r["deliveries"][0]["last_error"] for r in ours)
    shown = await cli_rows(capsys, "events", "--payment", req.invoice_number)
    assert [r["event_id"] for r in shown] == [r["event_id"] for r in ours]

    receiver.status = 200
    captured_id = ours[2]["event_id"]
    (answer,) = await cli_rows(capsys, "events", "replay", captured_id)
    replayed = await asyncio.wait_for(stack.client.get_workflow_handle(
        answer["replayed_in"], result_type=StreamState).result(), 30)
    assert [r.state.value for r in replayed.events] == ["DELIVERED"]
    body, headers = receiver.delivered()[-1]
    event = verify_notification(body, headers[SIGNATURE_HEADER.lower()], SECRET)
    assert (event.event_id, event.type.value, event.sequence) == (captured_id, "bkash.captured", 3)


async def test_events_refuses_what_is_not_an_event_id(short_budget, capsys):
    assert await _main(["events", "replay", "not-an-event"]) == 2
    assert "event_id" in capsys.readouterr().err
    assert await _main(["events"]) == 2
    assert "--undelivered" in capsys.readouterr().err
