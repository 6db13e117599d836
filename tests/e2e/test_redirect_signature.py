"""Issue 9 §4: bKash returns that work whether or not the redirect signature is the one in the
create answer (no public source proves they are equal). Under the default advisory rule a success
return still triggers the one execute (bKash decides), a cancel/failure with another signature is
recorded and ends nothing; an early forged return never makes the customer's real one a duplicate;
a stream of returns asks bKash a bounded number of times."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest_asyncio

from contracts.bkash import BkashStage, SignatureRule
from embedded import serve_asgi
from merchant_client import report_service_delivered, report_service_failed
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from tests.conftest import make_settings, running_stack
from tests.support.bkash import kinds, pay, result, return_url, state, wait_for_stage
from workflows.bkash_returns import MAX_JOINED_RETURNS, RETURN_EXECUTE_SPACING
from worker import build_activities


@pytest_asyncio.fixture(scope="module")
async def other_signature_sandbox(monetix_sandbox_url, http):
    """A bKash sandbox whose redirect carries another signature than its create answer shows,
    with the activities of a worker that talks to it."""
    async with serve_asgi(create_bkash_sandbox(BkashSandboxConfig(
            redirect_signature="different"))) as url:
        yield url, build_activities(make_settings(url, "http://unused", "unused",
                                                  monetix_sandbox_url), http)


@pytest_asyncio.fixture
async def other_signature_stack(dev_env, other_signature_sandbox, monetix_sandbox_url, http):
    url, acts = other_signature_sandbox
    async with running_stack(dev_env, url, monetix_sandbox_url, http, acts) as s:
        yield s


@pytest_asyncio.fixture(params=["as_created", "different"])
async def any_signature_stack(request, dev_env, bkash_sandbox_url, shared_activities,
                              other_signature_sandbox, monetix_sandbox_url, http):
    """The default sandbox (the redirect repeats the create answer's signature), then the other."""
    url, acts = (bkash_sandbox_url, shared_activities) if request.param == "as_created" \
        else other_signature_sandbox
    async with running_stack(dev_env, url, monetix_sandbox_url, http, acts) as s:
        yield s


def redirect_signature(journey) -> str:
    return parse_qs(urlsplit(journey.callback_url_hit).query)["signature"][-1]


async def forged(stack, req, payment_id: str, status: str, signature: str | None) -> httpx.Response:
    """A return sent by someone who holds the payment's link (its token), not by bKash."""
    params = {"paymentID": payment_id, "status": status}
    if signature:
        params["signature"] = signature
    async with httpx.AsyncClient(timeout=60) as browser:
        return await browser.get(return_url(stack, req.workflow_id), params=params)


async def test_with_another_redirect_signature_the_customers_return_authorizes_at_once(
        other_signature_stack):
    stack = other_signature_stack
    req, url = await pay(stack)  # the default approval window: 15 minutes
    journey = await stack.customer.approve(url.bkash_url)
    assert redirect_signature(journey) != (await stack.sandbox.payment(url.payment_id))["signature"]
    # Authorized by the return itself: right after it, not at the window's end.
    assert (await state(stack, req)).stage is BkashStage.AUTHORIZED
    assert "authorized" in journey.final_text.lower()
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]
    calls = await stack.sandbox.calls(invoice=req.invoice_number)
    assert (calls["execute"], calls["query"]) == (1, 0)


async def test_with_another_redirect_signature_a_cancel_is_recorded_and_ends_nothing(
        other_signature_stack):
    stack = other_signature_stack
    req, url = await pay(stack, approval_window=timedelta(seconds=3))
    journey = await stack.customer.cancel(url.bkash_url)
    assert journey.redirect_status == "cancel" and "pending" in journey.final_text.lower()
    s = await state(stack, req)
    assert s.stage is BkashStage.AWAITING_APPROVAL
    assert any("said cancel with a signature that is not the create answer's" in e.event
               for e in s.timeline)
    # The approval window's execute decides: bKash never saw an approval.
    res = await result(stack, req)
    assert res.stage is BkashStage.EXPIRED
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []
    assert (await stack.sandbox.calls(invoice=req.invoice_number))["execute"] == 1


async def test_a_forged_cancel_does_not_cancel_and_the_customer_still_pays(other_signature_stack):
    stack = other_signature_stack
    req, url = await pay(stack)
    answers = [await forged(stack, req, url.payment_id, status, signature)
               for status, signature in (("cancel", "forgedSig1"), ("failure", None),
                                         ("cancel", "forgedSig1"))]
    assert all(a.status_code == 200 and "data-outcome='pending'" in a.text for a in answers)
    s = await state(stack, req)
    assert s.stage is BkashStage.AWAITING_APPROVAL
    assert sum("nothing ended" in e.event for e in s.timeline) == 3
    # More are refused before they reach the history.
    assert (await forged(stack, req, url.payment_id, "cancel", "again")).status_code == 200
    assert sum("nothing ended" in e.event for e in (await state(stack, req)).timeline) == 3
    assert (await stack.sandbox.calls(invoice=req.invoice_number))["query"] == 0
    journey = await stack.customer.approve(url.bkash_url)
    assert "authorized" in journey.final_text.lower()
    assert (await state(stack, req)).stage is BkashStage.AUTHORIZED
    await report_service_failed(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.VOIDED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "VOID"]


async def test_a_forged_early_success_then_the_real_return_authorizes_promptly(
        any_signature_stack):
    stack = any_signature_stack
    req, url = await pay(stack)
    # The forger even has bKash's signature from the create answer.
    signature = (await stack.sandbox.payment(url.payment_id))["signature"]
    early = await forged(stack, req, url.payment_id, "success", signature)
    assert early.status_code == 200 and "data-outcome='pending'" in early.text
    assert (await state(stack, req)).stage is BkashStage.AWAITING_APPROVAL
    journey = await stack.customer.approve(url.bkash_url)
    assert "authorized" in journey.final_text.lower()
    assert (await state(stack, req)).stage is BkashStage.AUTHORIZED
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]
    calls = await stack.sandbox.calls(invoice=req.invoice_number)
    assert (calls["execute"], calls["query"]) == (2, 0)  # the forged one's, and the real one's


async def test_a_stream_of_forged_successes_asks_bkash_a_bounded_number_of_times(stack):
    req, url = await pay(stack)
    signature = (await stack.sandbox.payment(url.payment_id))["signature"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    burst = await asyncio.gather(*(forged(stack, req, url.payment_id, "success", signature)
                                   for _ in range(12)))
    assert all(r.status_code == 200 and "data-outcome='pending'" in r.text for r in burst)
    for _ in range(2):  # and one after another
        await forged(stack, req, url.payment_id, "success", signature)
    elapsed = loop.time() - started
    # At most one execute per spacing (the first at once), whatever the number of returns.
    executes = (await stack.sandbox.calls(invoice=req.invoice_number))["execute"]
    assert 2 <= executes <= 2 + elapsed // RETURN_EXECUTE_SPACING.total_seconds()
    # Each round takes its own return and at most MAX_JOINED_RETURNS more into the history.
    history = await stack.client.get_workflow_handle(req.workflow_id).fetch_history()
    accepted = [e for e in history.events
                if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(accepted) <= 1 + executes * (1 + MAX_JOINED_RETURNS)  # approval_url, the rounds
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []
    await stack.customer.approve(url.bkash_url)
    assert (await state(stack, req)).stage is BkashStage.AUTHORIZED
    await stack.client.get_workflow_handle(req.workflow_id).cancel()
    assert (await result(stack, req)).stage is BkashStage.VOIDED


async def test_the_strict_rule_refuses_another_redirect_signature(
        dev_env, other_signature_sandbox, monetix_sandbox_url, http):
    sandbox_url, acts = other_signature_sandbox
    async with running_stack(dev_env, sandbox_url, monetix_sandbox_url, http, acts,
                             signature_rule=SignatureRule.STRICT) as stack:
        req, url = await pay(stack, approval_window=timedelta(seconds=3))
        journey = await stack.customer.approve(url.bkash_url)
        assert "pending" in journey.final_text.lower()
        assert (await state(stack, req)).stage is BkashStage.AWAITING_APPROVAL
        assert (await stack.sandbox.calls(invoice=req.invoice_number))["execute"] == 0
        # Only the approval window's execute authorizes it (the closed-tab path).
        await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
        await stack.client.get_workflow_handle(req.workflow_id).cancel()
        assert (await result(stack, req)).stage is BkashStage.VOIDED
