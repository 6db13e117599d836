"""Void is retried like capture: every retry asks bKash (Query Payment) before re-sending, so a void
whose answer was lost after bKash applied it is never sent again. bKash refuses a second void
(2119), which hides a blind re-send from the ledger and the final stage; the sandbox's call count
shows it."""

from __future__ import annotations

import pytest

from merchant_client import report_service_failed
from contracts.bkash import BkashStage
from tests.support.bkash import pay, result, wait_for_stage


async def authorized(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    return req, url


def money(ledger: list[dict]) -> list[tuple[str, int]]:
    return [(entry["kind"], entry["amount_poisha"]) for entry in ledger]


async def test_void_applied_but_answer_lost_is_reconciled_by_query_not_sent_again(stack):
    req, url = await authorized(stack)
    await stack.sandbox.add_fault("void", "drop_connection", commit=True,
                                  match={"paymentID": url.payment_id})
    await report_service_failed(stack.client, req.invoice_number, "room no longer available")
    assert (await result(stack, req)).stage is BkashStage.VOIDED
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("VOID", req.amount_poisha)]
    calls = await stack.sandbox.calls(payment_id=url.payment_id)
    # The retry asked bKash, heard "Cancelled", and sent nothing.
    assert (calls["void"], calls["query"], calls["capture"]) == (1, 1, 0)
    payment = await stack.sandbox.payment(url.payment_id)
    assert payment["status"] == "Cancelled" and payment["void_count"] == 1


@pytest.mark.parametrize("kind,kw", [("http_error", {"status": 503}),
                                     ("drop_connection", {"commit": False})])
async def test_void_is_retried_through_provider_faults_asking_bkash_before_each_resend(stack, kind,
                                                                                       kw):
    req, url = await authorized(stack)
    await stack.sandbox.add_fault("void", kind, times=2, match={"paymentID": url.payment_id}, **kw)
    await report_service_failed(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.VOIDED
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("VOID", req.amount_poisha)]
    calls = await stack.sandbox.calls(payment_id=url.payment_id)
    # Two voids broken before bKash applied them, then the one that worked; a query before each
    # re-send found the payment still Authorized.
    assert (calls["void"], calls["query"]) == (3, 2)
