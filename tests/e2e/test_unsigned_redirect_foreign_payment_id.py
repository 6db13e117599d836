"""The workflow's own paymentID check on the customer's return, without the redirect signature in
front of it: bKash's create answer may come without successCallbackURL (the field is optional in
the client), and then there is no signature to compare. A forged return carrying another payment's
paymentID must still change nothing: no execute or query reaches bKash, no money moves, nothing is
written to the payment's history."""

from __future__ import annotations

import pytest
from temporalio import activity

from contracts.bkash import BkashActivity, BkashStage, CreatedPaymentInfo, CreatePaymentInput
from merchant_client import report_service_delivered
from tests.conftest import running_stack
from tests.support.bkash import kinds, pay, result, return_url, state, wait_for_stage


def create_without_redirect_signature(acts: list) -> list:
    """The worker's activities, with create answering as bKash does when its create answer has no
    successCallbackURL: no redirect signature to check returns against."""
    real = next(a for a in acts if getattr(a, "__name__", "") == "create_payment")

    @activity.defn(name=BkashActivity.CREATE_PAYMENT)
    async def create_payment(inp: CreatePaymentInput) -> CreatedPaymentInfo:
        created = await real(inp)
        return created.model_copy(update={"redirect_signature": None})

    return [create_payment if a is real else a for a in acts]


@pytest.fixture
async def unsigned_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    async with running_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http,
                             create_without_redirect_signature(shared_activities)) as s:
        yield s


@pytest.mark.parametrize("status", ["success", "cancel", "failure"])
async def test_forged_return_with_a_foreign_payment_id_changes_nothing_without_a_signature(
        unsigned_stack, status):
    stack = unsigned_stack
    req, url = await pay(stack)
    handle = stack.client.get_workflow_handle(req.workflow_id)
    events_before = len((await handle.fetch_history()).events)
    forged = await stack.customer.http.get(
        return_url(stack, req.workflow_id),
        params={"paymentID": "TR0011someoneElse1700000000000", "status": status},
        follow_redirects=True)
    calls = await stack.sandbox.calls(invoice=req.invoice_number)
    assert (calls["execute"], calls["query"]) == (0, 0)
    s = await state(stack, req)
    assert s.stage is BkashStage.AWAITING_APPROVAL and s.payment_id == url.payment_id
    assert await stack.sandbox.ledger(invoice=req.invoice_number) == []
    # A rejected update writes nothing to history.
    assert len((await handle.fetch_history()).events) == events_before
    assert forged.status_code == 409
    # The customer's real return (unsigned as far as this payment knows) still pays.
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(invoice=req.invoice_number)) == ["AUTHORIZE", "CAPTURE"]
