"""Issue 11 §3: a call we refused ourselves is not a lost answer. When the worker has no bKash token
(the hour's two grant/refresh calls are spent), execute is never sent; the payment waits for a
token and executes then: no Query Payment, no second payment, the customer approves once; with no
token by max(token_wait, approval_window) it expires, never sent. A capture, void or refund refused
so is retried by Temporal, and the retry sends it without asking bKash first (no Query Payment, no
refund status).

On the time-skipping test server; the worker's token clock is moved with Temporal's clock, so the
hour passes in well under a second (the sandbox's own hour does not matter: it never sees a third
call within one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from embedded import serve_asgi
from merchant_client import refund, report_service_delivered, report_service_failed
from sandbox.bkash import create_app as create_bkash_sandbox
from tests.conftest import SANDBOX, make_settings, running_stack
from tests.support.bkash import kinds, pay, pay_and_capture, result, wait_for_stage
from contracts.bkash import BkashActivity, BkashStage
from contracts.common import Provider
from contracts.refunds import RefundActivity, RefundRequest, RefundStage
from worker import build_activities


class MovableClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@contextlib.asynccontextmanager
async def token_clock_stack(ts_env, http, monetix_sandbox_url):
    """A worker on its own bKash sandbox whose token manager's clock the test moves:
    (stack, the token manager, its clock)."""
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        acts = build_activities(make_settings(sandbox_url, "http://unused", "unused",
                                              monetix_sandbox_url), http)
        tokens = acts[0].__self__._client.tokens
        clock = tokens._clock = MovableClock()
        async with running_stack(ts_env, sandbox_url, monetix_sandbox_url, http, acts) as stack:
            yield stack, tokens, clock


def spend_the_budget(tokens, clock, *, expire_token: bool = False) -> None:
    """Another grant/refresh call this hour: the budget is spent (and, with ``expire_token``, the
    token the worker holds is no longer valid)."""
    tokens.state.calls.append(clock())
    if expire_token:
        tokens.state.expires_at = clock()


async def token_wait_timers(stack, handle) -> list[timedelta]:
    """The durations of the workflow's "waiting for a bKash token" sleeps, from its history
    (timer summaries are payloads, encrypted like the rest: read as the Web UI does)."""
    history = await handle.fetch_history()
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    texts = await stack.client.data_converter.decode(
        [e.user_metadata.summary for e in timers]) if timers else []
    return [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            for e, text in zip(timers, texts) if "waiting for a bKash token" in str(text)]


async def test_an_execute_refused_for_want_of_a_token_is_sent_once_a_token_is_had(
        ts_env, http, monetix_sandbox_url):
    async with token_clock_stack(ts_env, http, monetix_sandbox_url) as (stack, tokens, clock):
        req, url = await pay(stack)  # grant #1
        spend_the_budget(tokens, clock)
        # bKash rejects the token on execute (401 "expired"): a new one is needed, and none
        # may be had for an hour. Execute was therefore never sent.
        await stack.sandbox.add_fault("execute", "expire_token",
                                      match={"paymentID": url.payment_id})
        await stack.customer.approve(url.bkash_url)
        handle = stack.client.get_workflow_handle(req.workflow_id)

        for _ in range(200):
            if await token_wait_timers(stack, handle):
                break
            await ts_env.sleep(timedelta(seconds=1))
        else:
            raise AssertionError("the payment never waited for a token")
        assert (await stack.sandbox.ledger(payment_id=url.payment_id)) == []
        # An hour later the budget is back: the next execute gets a token and is sent.
        clock.offset += 3601
        await ts_env.sleep(timedelta(minutes=6))
        await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
        await report_service_delivered(stack.client, req.invoice_number)
        res = await result(stack, req)
        assert res.stage is BkashStage.CAPTURED
        assert res.payment_id == url.payment_id  # the payment the customer approved
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
            "AUTHORIZE", "CAPTURE"]
        calls = await stack.sandbox.calls(invoice=req.invoice_number)
        assert calls["create"] == 1 and calls["query"] == 0, calls
        stats = await stack.sandbox.stats()
        assert stats["grant_calls"] + stats["refresh_calls"] == 2
        history = await handle.fetch_history()
        markers = [e.marker_recorded_event_attributes.details["patch_data"]
                   for e in history.events if e.HasField("marker_recorded_event_attributes")]
        assert markers, "the new path is versioned with workflow.patched"


async def test_a_capture_refused_for_want_of_a_token_is_sent_later_without_asking_first(
        ts_env, http, monetix_sandbox_url):
    """The retry of a capture that was never sent needs no Query Payment first (bKash's UAT
    counts queries on successful payments against the merchant: reference §12)."""
    async with token_clock_stack(ts_env, http, monetix_sandbox_url) as (stack, tokens, clock):
        req, url = await pay(stack)
        await stack.customer.approve(url.bkash_url)
        await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
        spend_the_budget(tokens, clock)
        await stack.sandbox.add_fault("capture", "expire_token",
                                      match={"paymentID": url.payment_id})
        await report_service_delivered(stack.client, req.invoice_number)
        await wait_for_stage(stack, req, BkashStage.CAPTURING)
        await ts_env.sleep(timedelta(seconds=5))
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE"]
        clock.offset += 3601
        await ts_env.sleep(timedelta(minutes=61))
        res = await result(stack, req)
        assert res.stage is BkashStage.CAPTURED
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
            "AUTHORIZE", "CAPTURE"]
        calls = await stack.sandbox.calls(payment_id=url.payment_id)
        assert calls["query"] == 0, calls  # the retry knew its first attempt sent nothing
        assert calls["capture"] == 2, calls  # the one bKash refused (401), the one it took


async def refused_for_want_of_a_token(stack, workflow_id: str, activity: str) -> None:
    """Until the workflow's pending ``activity`` has failed once saying it sent nothing: the
    refusal under test really happened before the test gives the budget back."""
    handle = stack.client.get_workflow_handle(workflow_id)
    for _ in range(300):
        desc = await handle.describe()
        for pending in desc.raw_description.pending_activities:
            if pending.activity_type.name == activity and pending.HasField("last_failure"):
                # Failures are encrypted like every payload: decode the message to read it.
                failure = await stack.client.data_converter.decode_failure(pending.last_failure)
                if "was not sent" in str(failure):
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{activity} of {workflow_id} was never refused for want of a token")


async def test_a_void_refused_for_want_of_a_token_is_sent_later_without_asking_first(
        ts_env, http, monetix_sandbox_url):
    async with token_clock_stack(ts_env, http, monetix_sandbox_url) as (stack, tokens, clock):
        req, url = await pay(stack)
        await stack.customer.approve(url.bkash_url)
        await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
        spend_the_budget(tokens, clock)
        await stack.sandbox.add_fault("void", "expire_token",
                                      match={"paymentID": url.payment_id})
        await report_service_failed(stack.client, req.invoice_number, "room not available")
        await refused_for_want_of_a_token(stack, req.workflow_id, BkashActivity.VOID_PAYMENT)
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE"]
        clock.offset += 3601
        await ts_env.sleep(timedelta(minutes=61))
        res = await result(stack, req)
        assert res.stage is BkashStage.VOIDED, res
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
            "AUTHORIZE", "VOID"]
        assert (await stack.sandbox.payment(url.payment_id))["void_count"] == 1
        calls = await stack.sandbox.calls(payment_id=url.payment_id)
        assert calls["query"] == 0, calls  # the retry knew its first attempt sent nothing
        assert calls["void"] == 2, calls  # the one bKash refused (401), the one it took
        assert calls["capture"] == 0, calls


async def test_a_refund_refused_for_want_of_a_token_is_sent_later_without_asking_refund_status(
        ts_env, http, monetix_sandbox_url):
    """The worker's token has expired and the hour's budget is spent: the refund is refused here,
    before anything reaches bKash, and its retry sends it without asking refund status."""
    async with token_clock_stack(ts_env, http, monetix_sandbox_url) as (stack, tokens, clock):
        req, url, captured = await pay_and_capture(stack, amount_poisha=100000)
        assert captured.stage is BkashStage.CAPTURED
        spend_the_budget(tokens, clock, expire_token=True)
        ask = RefundRequest(provider=Provider.BKASH, payment_key=req.invoice_number,
                            refund_id="RF-1", amount_poisha=30000, reason="customer cancelled",
                            sku="room")
        try:
            pending = await refund(stack.client, ask, task_queue=stack.settings.task_queue,
                                   wait=False)
            assert pending.stage is RefundStage.PENDING
            await refused_for_want_of_a_token(stack, ask.workflow_id,
                                              RefundActivity.BKASH_REFUND)
            assert await stack.sandbox.refunds(payment_id=url.payment_id) == []
            clock.offset += 3601
            await ts_env.sleep(timedelta(minutes=61))
            record = await refund(stack.client, ask, task_queue=stack.settings.task_queue)
        finally:
            # A ledger left open (15 days) would hold up time skipping for later tests.
            await stack.client.get_workflow_handle(ask.workflow_id).terminate("test over")
        assert record.stage is RefundStage.SUCCEEDED, record
        assert not record.reconciled
        made = await stack.sandbox.refunds(payment_id=url.payment_id)
        assert [(r["amount_poisha"], r["refund_trx_id"]) for r in made] == [
            (30000, record.provider_refund_id)]
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
            "AUTHORIZE", "CAPTURE", "REFUND"]
        calls = await stack.sandbox.calls(payment_id=url.payment_id)
        assert calls["refund_status"] == 0, calls  # nothing was sent, so nothing to ask
        assert calls["refund"] == 1, calls  # refused here, never at bKash


@contextlib.asynccontextmanager
async def never_a_token(ts_env, http, monetix_sandbox_url, **windows):
    """A payment approved while the worker has no token and may get none this hour, to its end:
    (stack, request, approval, result, handle)."""
    async with token_clock_stack(ts_env, http, monetix_sandbox_url) as (stack, tokens, clock):
        req, url = await pay(stack, **windows)  # grant #1
        spend_the_budget(tokens, clock, expire_token=True)
        await stack.customer.approve(url.bkash_url)
        handle = stack.client.get_workflow_handle(req.workflow_id)
        for _ in range(300):
            if await token_wait_timers(stack, handle):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the payment never waited for a token")
        # Longer than either window: only the payment's own deadline can end the wait.
        await ts_env.sleep(max(windows.values()) + timedelta(minutes=5))
        res = await result(stack, req)
        yield stack, req, url, res, handle


async def test_an_execute_that_gets_no_token_within_token_wait_expires_unsent(
        ts_env, http, monetix_sandbox_url):
    windows = {"token_wait": timedelta(minutes=3), "approval_window": timedelta(minutes=1)}
    async with never_a_token(ts_env, http, monetix_sandbox_url, **windows) as (
            stack, req, url, res, handle):
        assert res.stage is BkashStage.EXPIRED, res
        assert "execute was never sent: no bKash token within 0:03:00" in res.detail, res
        assert res.detail.endswith("no money moved"), res
        assert await stack.sandbox.ledger(payment_id=url.payment_id) == []
        assert (await stack.sandbox.calls(invoice=req.invoice_number))["create"] == 1
        calls = await stack.sandbox.calls(payment_id=url.payment_id)
        assert calls["execute"] == 0 and calls["query"] == 0, calls  # refused here, every time
        # token_wait is the longer: the payment waited that long for a token, not longer.
        assert sum(await token_wait_timers(stack, handle), timedelta()) == windows["token_wait"]


async def test_an_execute_waits_for_a_token_at_least_the_approval_window(
        ts_env, http, monetix_sandbox_url):
    windows = {"token_wait": timedelta(minutes=1), "approval_window": timedelta(minutes=4)}
    async with never_a_token(ts_env, http, monetix_sandbox_url, **windows) as (
            stack, req, url, res, handle):
        assert res.stage is BkashStage.EXPIRED, res
        # The detail names the wait there was, not the shorter token_wait.
        assert "execute was never sent: no bKash token within 0:04:00" in res.detail, res
        assert (await stack.sandbox.calls(payment_id=url.payment_id))["execute"] == 0
        # max(token_wait, approval_window): the shorter token_wait does not cut the wait short.
        assert sum(await token_wait_timers(stack, handle), timedelta()) == \
            windows["approval_window"]
        history = await handle.fetch_history()
        refused = [e.event_time.ToDatetime() for e in history.events
                   if e.HasField("activity_task_failed_event_attributes")]
        ended = history.events[-1].event_time.ToDatetime()
        assert len(refused) == 2, refused  # the first execute, and the last one at the deadline
        assert ended - refused[0] >= windows["approval_window"]
