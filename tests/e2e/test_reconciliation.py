"""Issue 13 §2: reconciliation of a window end to end, on the dev server, against both sandboxes.

A few hundred payments are made through the real workflows; once they closed, seven divergences are
injected in the sandboxes (as a provider changing its mind, a refund in the merchant portal, ...).
The run must report exactly those seven, notify each once, count them in its search attribute, and
a second run of the same window must change nothing. bKash's UAT rule is checked on its call log:
the happy path made no Query Payment call, and reconciliation only searched and asked refund status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.worker import Worker

from activities.notifications import NotificationActivities, NotificationPublisher
from activities.reconciliation import reconciliation_activities
from contracts.bkash import BkashStage
from contracts.common import Provider
from contracts.monetix import MonetixStage
from contracts.notifications import EventType
from contracts.reconciliation import (
    BatchResult,
    DivergenceKind,
    ReconciliationOptions,
    Window,
    payment_deadline,
)
from contracts.refunds import RefundRequest
from embedded import ensure_search_attributes, serve_asgi
from merchant_client import (
    payment_result,
    payment_state,
    refund,
    report_service_delivered,
    report_service_failed,
    submit_transaction_id,
)
from merchant_client.reconciliation import reconcile, window_report
from providers.webhooks import WebhookEndpoint
from sandbox.bkash.customer import BkashCustomer
from sandbox.monetix.customer import MonetixBkashCustomer
from tests.support.bkash import pay, record_history, wait_for_stage
from tests.support.monetix import purchase_result, start_gate
from workflows import search_attributes as sa
from workflows.notification_stream import NotificationStream
from workflows.reconciliation import ReconciliationBatch, ReconciliationRun

BKASH_CAPTURED, BKASH_VOIDED, BKASH_REFUNDED = 170, 30, 12
MONETIX_SUCCESS, MONETIX_DECLINED = 50, 10
INSUFFICIENT_BALANCE_WALLET = "01823074817"  # the Monetix sandbox declines it with 20105
SECRET = "reconciliation-receiver-secret-0123456789"


class Receiver:
    """The merchant's order system: keeps every notification it is sent, answers 200."""

    def __init__(self) -> None:
        self.events: list[dict] = []

        async def hook(request: Request) -> Response:
            self.events.append(json.loads(await request.body()))
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def divergences(self) -> list[dict]:
        return [e for e in self.events if e["type"] == EventType.RECONCILIATION_DIVERGENCE.value]


async def _bounded(limit: int, calls) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(call):
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def bkash_payment(stack, customer, *, capture: bool):
    req, url = await pay(stack, amount_poisha=100000)
    await customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    if capture:
        await report_service_delivered(stack.client, req.invoice_number)
    else:
        await report_service_failed(stack.client, req.invoice_number, "no room")
    res = await payment_result(stack.client, req.invoice_number)
    assert res.stage is (BkashStage.CAPTURED if capture else BkashStage.VOIDED)
    return req, res


async def monetix_purchase(stack, customer, *, success: bool):
    req, _ = await start_gate(stack)
    wallet = None if success else INSUFFICIENT_BALANCE_WALLET
    trx = await customer.pay_in_bkash(req.sale.payment_id, **({"wallet": wallet} if wallet else {}))
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is (MonetixStage.SUCCESS if success else MonetixStage.DECLINED)
    return req, res


async def stuck_payment(stack, customer):
    """A payment whose capture bKash keeps refusing with 503: the workflow retries for ever, long
    past its approval window and hold deadline."""
    # Windows short enough to be over within the test, long enough for a loaded machine.
    req, url = await pay(stack, amount_poisha=70000, approval_window=timedelta(seconds=10),
                         hold_deadline=timedelta(seconds=10), token_wait=timedelta(seconds=1),
                         max_create_attempts=1)
    await customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await stack.sandbox.add_fault("capture", "http_error", status=503, times=100000,
                                  match={"paymentID": url.payment_id})
    await report_service_delivered(stack.client, req.invoice_number)
    return req, url


def _second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


@pytest.fixture
async def customers(stack):
    """The customers' browsers, without keep-alive: hundreds of journeys on a loaded machine would
    otherwise reuse a connection the endpoint is just closing (its 5 s idle keep-alive), which a
    real browser retries and httpx does not."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) \
            as browser:
        yield BkashCustomer(browser), MonetixBkashCustomer(browser, stack.monetix_url)


@pytest.fixture
async def leftovers(stack):
    """Workflows to terminate at the end, pass or fail (the stuck payment retries for ever)."""
    handles: list = []
    yield handles
    for handle in handles:
        with contextlib.suppress(Exception):
            await handle.terminate("test over")
    await stack.sandbox.clear_faults()


async def test_a_window_reports_exactly_the_injected_divergences_and_a_rerun_changes_nothing(
        stack, customers, leftovers, shared_activities, http, tmp_path):
    began = time.monotonic()
    bkash_customer, monetix_customer = customers
    await ensure_search_attributes(stack.client)
    start = _second(datetime.now(timezone.utc)) - timedelta(seconds=1)
    stuck, _ = await stuck_payment(stack, bkash_customer)
    leftovers.append(stack.client.get_workflow_handle(stuck.workflow_id))
    # Monetix first: the status request is not allowed within 10 s of a sale (§3.4).
    monetix = await _bounded(12, [monetix_purchase(stack, monetix_customer,
                                                   success=i < MONETIX_SUCCESS)
                                  for i in range(MONETIX_SUCCESS + MONETIX_DECLINED)])
    bkash = await _bounded(16, [bkash_payment(stack, bkash_customer, capture=i < BKASH_CAPTURED)
                                for i in range(BKASH_CAPTURED + BKASH_VOIDED)])
    captured = [p for p in bkash if p[1].stage is BkashStage.CAPTURED]
    voided = [p for p in bkash if p[1].stage is BkashStage.VOIDED]
    refunded = captured[:BKASH_REFUNDED]
    await _bounded(6, [refund(stack.client, RefundRequest(
        provider=Provider.BKASH, payment_key=req.invoice_number, refund_id=f"RF-{i}",
        # two of them in full: those ledgers close FULLY_REFUNDED inside the window
        amount_poisha=100000 if i < 2 else 25000, reason="guest left early", sku="room"),
        task_queue=stack.settings.task_queue, callback_base_url=stack.endpoint_url)
        for i, (req, _) in enumerate(refunded)])
    created = time.monotonic() - began

    # After the fact, the providers disagree with what the project recorded.
    flipped, lost, portal = voided[0], captured[-1], captured[-2]
    await stack.sandbox.change_status(flipped[1].payment_id, "Completed")
    await stack.sandbox.forget_payment(lost[1].payment_id)
    portal_refund = (await stack.sandbox.refund_outside(portal[1].payment_id, "100.00"))[
        "refund_trx_id"]
    paid_less, unknown, declined = monetix[0], monetix[1], monetix[2]
    await stack.monetix.change_paid_amount(paid_less[0].sale.payment_id, 90000)
    await stack.monetix.forget_payment(unknown[0].sale.payment_id)
    await stack.monetix.change_status(declined[0].sale.payment_id, "decline", "20000")
    expected = {(DivergenceKind.STATE, flipped[0].workflow_id),
                (DivergenceKind.MISSING_AT_PROVIDER, lost[0].workflow_id),
                (DivergenceKind.UNKNOWN_REFUND, portal[0].workflow_id),
                (DivergenceKind.AMOUNT, paid_less[0].workflow_id),
                (DivergenceKind.MISSING_AT_PROVIDER, unknown[0].workflow_id),
                (DivergenceKind.STATE, declined[0].workflow_id),
                (DivergenceKind.OVERDUE, stuck.workflow_id)}

    # The window ends once everything closed and the stuck payment's deadline passed.
    grace = timedelta(seconds=1)
    started = (await leftovers[0].describe()).start_time
    deadline = payment_deadline("BkashAuthCapture", stuck, started, grace)
    end = _second(max(datetime.now(timezone.utc), deadline)) + timedelta(seconds=1)
    await asyncio.sleep(max(0.0, (end - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    window = Window(start=start, end=end)
    before = await _calls(stack, bkash)
    # Small batches and few per run: the window takes several batches and continues as new.
    options = ReconciliationOptions(calls_per_second=200, batch_size=40, parallel_batches=2,
                                    batches_per_run=3, overdue_grace=grace)

    receiver = Receiver()
    async with serve_asgi(receiver.app) as receiver_url:
        notify = NotificationActivities(http, {"orders": WebhookEndpoint(
            id="orders", url=f"{receiver_url}/hooks", secrets=[SecretStr(SECRET)])})
        queue = f"reconcile-{uuid.uuid4().hex[:8]}"
        async with Worker(stack.client, task_queue=queue,
                          workflows=[ReconciliationRun, ReconciliationBatch, NotificationStream],
                          activities=[*reconciliation_activities(shared_activities,
                                                                 report_dir=tmp_path),
                                      notify.notification_plan, notify.deliver_notification,
                                      NotificationPublisher(stack.client).publish_notification]):
            first = await reconcile(stack.client, window, options, task_queue=queue)
            await _until(lambda: len(receiver.divergences()) >= 7)
            first_files = _files(first)
            second = await reconcile(stack.client, window, options, task_queue=queue)
            await asyncio.sleep(0.5)  # an event the re-run wrongly sent would arrive by now
            latest = await window_report(stack.client, window)

    found = {(d.kind, d.payment_key) for d in first.divergences}
    assert found == expected, _explain(first)
    assert first.divergence_count == 7 and first.notified == 7 and not first.unchecked
    refund_row = next(d for d in first.divergences if d.kind is DivergenceKind.UNKNOWN_REFUND)
    assert refund_row.refund_id == portal_refund and refund_row.provider_amount_poisha == 10000
    checked = first.checked
    assert checked.bkash_payments >= BKASH_CAPTURED + BKASH_VOIDED
    assert checked.monetix_payments >= MONETIX_SUCCESS + MONETIX_DECLINED
    assert checked.refunds >= BKASH_REFUNDED and checked.running >= 1
    desc = await stack.client.get_workflow_handle(window.workflow_id).describe()
    assert desc.typed_search_attributes.get(sa.RECONCILIATION_DIVERGENCES) == 7
    runs = [wf.status.name async for wf in stack.client.list_workflows(
        f'WorkflowId = "{window.workflow_id}"')]
    assert runs.count("COMPLETED") == 2 and runs.count("CONTINUED_AS_NEW") >= 2

    # One event per divergence, each naming its payment and what differs.
    events = receiver.divergences()
    assert len(events) == 7
    assert {(e["divergence"]["kind"], e["payment_key"]) for e in events} == {
        (k.value, key) for k, key in expected}
    assert all(e["divergence"]["window"] == window.label for e in events)

    # The re-run: the same report, the same files, no new event.
    assert second.divergences == first.divergences and second.checked == first.checked
    assert second.notified == 0 and len(receiver.divergences()) == 7
    assert _files(second) == first_files and latest.divergences == first.divergences
    body = json.loads(first_files[0])
    assert body["divergence_count"] == 7 and len(body["divergences"]) == 7
    assert len(first_files[1].splitlines()) == 8  # the header and the seven rows

    # bKash's UAT rule: no Query Payment on the happy path (a payment whose execute answer a
    # loaded machine lost is not on it: its timeline says so), and none from reconciliation.
    after = await _calls(stack, bkash)
    assert all(a["query"] == b["query"] for a, b in zip(after, before))
    for (req, _), b in zip(bkash, before):
        if b["query"]:
            timeline = (await payment_state(stack.client, req.invoice_number)).timeline
            assert any(e.event.startswith("error") for e in timeline), \
                f"{req.invoice_number}: Query Payment on the happy path"
    assert sum(1 for b in before if b["query"]) <= 0.05 * len(bkash)
    # Reconciliation searched each trxID (and each refund's refundTrxID) once a run, at least
    # (a search whose answer was lost is asked again), and asked refund status of captured ones.
    with_refund = {res.payment_id for _, res in refunded}
    for (_, res), a, b in zip(bkash, after, before):
        if res.payment_id == lost[1].payment_id:
            continue
        assert a["search"] - b["search"] >= (4 if res.payment_id in with_refund else 2)
        if res.stage is BkashStage.CAPTURED:
            assert a["refund_status"] - b["refund_status"] >= 2
        else:
            assert a["refund_status"] == b["refund_status"]

    await _record_histories(stack, window)
    total = time.monotonic() - began
    print(f"payments made in {created:.0f} s, the whole test {total:.0f} s; provider calls "
          f"{first.provider_calls} + {second.provider_calls}")


async def _record_histories(stack, window: Window) -> None:
    """With RECORD_HISTORIES=1: the re-run's history and a first-run batch that notified."""
    if not os.environ.get("RECORD_HISTORIES"):
        return
    await record_history(stack.client.get_workflow_handle(window.workflow_id), "reconciliation")
    query = (f'WorkflowType = "ReconciliationBatch" AND WorkflowId STARTS_WITH '
             f'"{window.workflow_id}/"')
    async for wf in stack.client.list_workflows(query):
        handle = stack.client.get_workflow_handle(wf.id, run_id=wf.run_id,
                                                  result_type=BatchResult)
        if (await handle.result()).notified:
            await record_history(handle, "reconciliation_batch")
            return


async def _calls(stack, payments) -> list[dict[str, int]]:
    return await _bounded(20, [stack.sandbox.calls(payment_id=res.payment_id)
                               for _, res in payments])


def _files(report) -> tuple[str, str]:
    with open(report.json_path) as j, open(report.csv_path) as c:
        return j.read(), c.read()


def _explain(report) -> str:
    return "\n".join(f"{d.kind.value} {d.payment_key}: {d.detail}" for d in report.divergences)


async def _until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)
