"""Issue 11 §3: a call we refused ourselves is not a lost answer. When the worker has no bKash token
(the hour's two grant/refresh calls are spent), execute is never sent; the payment waits for a
token and executes then: no Query Payment, no second payment, the customer approves once.

On the time-skipping test server; the worker's token clock is moved with Temporal's clock, so the
hour passes in well under a second (the sandbox's own hour does not matter: it never sees a third
call within one).
"""

from __future__ import annotations

import time
from datetime import timedelta

from embedded import serve_asgi
from merchant_client import report_service_delivered
from sandbox.bkash import create_app as create_bkash_sandbox
from tests.conftest import SANDBOX, make_settings, running_stack
from tests.support.bkash import kinds, pay, result, wait_for_stage
from contracts.bkash import BkashStage
from worker import build_activities


class MovableClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_an_execute_refused_for_want_of_a_token_is_sent_once_a_token_is_had(
        ts_env, http, monetix_sandbox_url):
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        acts = build_activities(make_settings(sandbox_url, "http://unused", "unused",
                                              monetix_sandbox_url), http)
        tokens = acts[0].__self__._client.tokens
        clock = tokens._clock = MovableClock()
        async with running_stack(ts_env, sandbox_url, monetix_sandbox_url, http, acts) as stack:
            req, url = await pay(stack)  # grant #1
            tokens.state.calls.append(clock())  # another call this hour: the budget is spent
            # bKash rejects the token on execute (401 "expired"): a new one is needed, and none
            # may be had for an hour. Execute was therefore never sent.
            await stack.sandbox.add_fault("execute", "expire_token",
                                          match={"paymentID": url.payment_id})
            await stack.customer.approve(url.bkash_url)
            handle = stack.client.get_workflow_handle(req.workflow_id)

            async def waiting_for_token() -> bool:
                history = await handle.fetch_history()
                summaries = [e.user_metadata.summary for e in history.events
                             if e.HasField("timer_started_event_attributes")]
                # Summaries are payloads, encrypted like the rest: read them as the Web UI does.
                texts = await stack.client.data_converter.decode(summaries) if summaries else []
                return any("waiting for a bKash token" in str(t) for t in texts)

            for _ in range(200):
                if await waiting_for_token():
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
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        acts = build_activities(make_settings(sandbox_url, "http://unused", "unused",
                                              monetix_sandbox_url), http)
        tokens = acts[0].__self__._client.tokens
        clock = tokens._clock = MovableClock()
        async with running_stack(ts_env, sandbox_url, monetix_sandbox_url, http, acts) as stack:
            req, url = await pay(stack)
            await stack.customer.approve(url.bkash_url)
            await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
            tokens.state.calls.append(clock())  # the hour's budget is spent
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
