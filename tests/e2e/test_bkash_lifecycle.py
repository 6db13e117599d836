"""Every BkashAuthCapture path end to end: real Temporal dev server, the bKash sandbox and the
merchant endpoint over loopback HTTP, the customer driving bKash's hosted page. Assertions are on
the sandbox's ledger (the money) and the Web UI's search attributes, not only the workflow's word."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from merchant_client import (
    PaymentError,
    list_payments,
    payment_state,
    report_service_delivered,
    report_service_failed,
    start_payment,
)
from tests.support.bkash import kinds, pay, result, return_url, state, wait_for_stage
from workflows import search_attributes as sa
from workflows.bkash import BkashAuthCapture
from contracts.bkash import BkashStage


async def stage_attribute(stack, req) -> str:
    desc = await stack.client.get_workflow_handle(req.workflow_id).describe()
    return desc.typed_search_attributes.get(sa.PAYMENT_STAGE)


def money(ledger: list[dict]) -> list[tuple[str, int]]:
    """What the merchant reconciles: each movement at bKash and its amount in poisha."""
    return [(entry["kind"], entry["amount_poisha"]) for entry in ledger]


async def bkash_calls(stack, req) -> dict[str, int]:
    """The payment calls bKash received for the invoice (bKash's UAT checks these)."""
    calls = await stack.sandbox.calls(invoice=req.invoice_number)
    return {op: calls[op] for op in ("create", "execute", "query", "capture", "void")}


async def test_approved_then_delivered_is_captured_exactly_once(stack):
    req, url = await pay(stack)
    assert url.stage is BkashStage.AWAITING_APPROVAL and url.bkash_url and url.payment_id
    journey = await stack.customer.approve(url.bkash_url)
    assert journey.redirect_status == "success"
    assert "authorized" in journey.final_text.lower()
    s = await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    assert s.trx_id and s.bkash_url is None
    await report_service_delivered(stack.client, req.invoice_number)
    res = await result(stack, req)
    assert res.stage is BkashStage.CAPTURED and res.trx_id == s.trx_id
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("CAPTURE", req.amount_poisha)]
    payment = await stack.sandbox.payment(url.payment_id)
    assert payment["status"] == "Completed" and payment["amount_poisha"] == req.amount_poisha
    # bKash fails a merchant's UAT for a Query Payment after a successful execute.
    assert await bkash_calls(stack, req) == {"create": 1, "execute": 1, "query": 0, "capture": 1,
                                             "void": 0}
    assert await stage_attribute(stack, req) == "CAPTURED"


async def test_service_failed_voids_the_authorization(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_failed(stack.client, req.invoice_number, "room no longer available")
    res = await result(stack, req)
    assert res.stage is BkashStage.VOIDED
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("VOID", req.amount_poisha)]
    assert await bkash_calls(stack, req) == {"create": 1, "execute": 1, "query": 0, "capture": 0,
                                             "void": 1}
    assert await stage_attribute(stack, req) == "VOIDED"


async def test_customer_cancel_on_bkash_page_ends_cancelled_without_money(stack):
    req, url = await pay(stack)
    journey = await stack.customer.cancel(url.bkash_url)
    assert journey.redirect_status == "cancel"
    assert "cancelled" in journey.final_text.lower()
    assert (await result(stack, req)).stage is BkashStage.CANCELLED
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []


@pytest.mark.parametrize("wallet", ["01823074817", "01823074818"])
async def test_insufficient_balance_and_debit_block_are_declined(stack, wallet):
    req, url = await pay(stack)
    journey = await stack.customer.approve(url.bkash_url, wallet=wallet)
    assert "declined" in journey.final_text.lower()
    res = await result(stack, req)
    assert res.stage is BkashStage.DECLINED
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []


async def test_wrong_pin_three_times_is_declined_after_bkash_confirms(stack):
    req, url = await pay(stack)
    journey = await stack.customer.fail_pin(url.bkash_url)
    assert journey.redirect_status == "failure"
    assert (await result(stack, req)).stage is BkashStage.DECLINED
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []


async def test_lost_execute_response_is_recovered_by_query(stack):
    req, url = await pay(stack)
    # bKash authorizes, but the answer arrives after the client's timeout.
    await stack.sandbox.add_fault("execute", "delay_after_commit", delay_seconds=5,
                                  match={"paymentID": url.payment_id})
    await stack.customer.approve(url.bkash_url)
    s = await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    assert any("query" in e.event for e in s.timeline) or s.last_error
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    ledger = await stack.sandbox.ledger(payment_id=url.payment_id)
    assert money(ledger) == [("AUTHORIZE", req.amount_poisha), ("CAPTURE", req.amount_poisha)]
    assert (await stack.sandbox.payment(url.payment_id))["execute_count"] == 1
    # The one query bKash allows: the execute gave no answer.
    assert await bkash_calls(stack, req) == {"create": 1, "execute": 1, "query": 1, "capture": 1,
                                             "void": 0}


async def test_execute_lost_before_bkash_applied_it_creates_a_new_payment(stack):
    req, url = await pay(stack)
    await stack.sandbox.add_fault("execute", "drop_connection", commit=False,
                                  match={"paymentID": url.payment_id})
    journey = await stack.customer.approve(url.bkash_url)
    # The endpoint sends the browser straight to bKash's page for the new payment.
    s = await state(stack, req)
    assert s.create_attempts == 2 and s.payment_id != url.payment_id
    assert s.previous_payment_ids == [url.payment_id]
    assert journey.final_url.startswith(s.bkash_url.split("?")[0])
    await stack.customer.approve(s.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    res = await result(stack, req)
    assert res.stage is BkashStage.CAPTURED and res.payment_id == s.payment_id
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []
    assert money(await stack.sandbox.ledger(payment_id=s.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("CAPTURE", req.amount_poisha)]


async def test_lost_capture_answer_is_reconciled_and_never_captured_twice(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await stack.sandbox.add_fault("capture", "delay_after_commit", delay_seconds=5,
                                  match={"paymentID": url.payment_id})
    await report_service_delivered(stack.client, req.invoice_number)
    res = await result(stack, req)
    assert res.stage is BkashStage.CAPTURED
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("CAPTURE", req.amount_poisha)]
    assert (await stack.sandbox.payment(url.payment_id))["capture_count"] == 1
    calls = await bkash_calls(stack, req)
    assert (calls["capture"], calls["query"]) == (1, 1)  # the retry asked bKash and sent nothing


@pytest.mark.parametrize("kind,kw", [("http_error", {"status": 503}),
                                     ("drop_connection", {"commit": False}),
                                     ("error_code", {"code": "2003"})])
async def test_capture_is_retried_through_provider_faults_until_bkash_answers(stack, kind, kw):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await stack.sandbox.add_fault("capture", kind, times=2, match={"paymentID": url.payment_id}, **kw)
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("CAPTURE", req.amount_poisha)]
    calls = await bkash_calls(stack, req)
    # Three captures (two broken by the faults); each re-send asked bKash first.
    assert (calls["capture"], calls["query"]) == (3, 2)


async def test_already_settled_code_on_void_is_reconciled_by_query(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    # The void is applied but its answer is lost; the retry then meets "already processed".
    await stack.sandbox.add_fault("void", "drop_connection", commit=True,
                                  match={"paymentID": url.payment_id})
    await report_service_failed(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.VOIDED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "VOID"]


async def test_second_start_for_the_invoice_returns_the_running_payment(stack):
    req, url = await pay(stack)
    again = await start_payment(stack.client, req, task_queue=stack.settings.task_queue)
    assert again.payment_id == url.payment_id and again.bkash_url == url.bkash_url
    assert len(await stack.sandbox.payments(invoice=req.invoice_number)) == 1
    await stack.customer.cancel(url.bkash_url)
    await result(stack, req)
    with pytest.raises(PaymentError, match="already paid"):
        await start_payment(stack.client, req, task_queue=stack.settings.task_queue)


async def test_service_outcome_is_rejected_unless_authorized(stack):
    req, url = await pay(stack)
    with pytest.raises(PaymentError, match="AWAITING_APPROVAL"):
        await report_service_delivered(stack.client, req.invoice_number)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    await report_service_delivered(stack.client, req.invoice_number)  # a retry: same update id
    with pytest.raises(PaymentError):
        await report_service_failed(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]


async def test_update_for_an_unknown_invoice_is_a_clear_error(stack):
    with pytest.raises(PaymentError, match="no running bKash payment"):
        await report_service_delivered(stack.client, "INV-never-started")


async def test_forged_success_before_approval_changes_nothing_until_bkash_confirms(stack):
    req, url = await pay(stack)
    cb = return_url(stack, req.workflow_id)
    forged = await stack.customer.http.get(
        cb, params={"paymentID": url.payment_id, "status": "success"}, follow_redirects=True)
    assert forged.status_code == 200
    s = await state(stack, req)
    assert s.stage is BkashStage.AWAITING_APPROVAL
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)


async def test_return_with_a_foreign_payment_id_is_refused(stack):
    req, url = await pay(stack)
    cb = return_url(stack, req.workflow_id)
    resp = await stack.customer.http.get(cb, params={"paymentID": "TR0011someoneelse",
                                                     "status": "cancel"})
    assert resp.status_code == 409
    assert (await state(stack, req)).stage is BkashStage.AWAITING_APPROVAL
    unknown = await stack.customer.http.get(f"{stack.endpoint_url}/bkash/return/bkash-nope",
                                            params={"paymentID": "TR1", "status": "success"})
    assert unknown.status_code == 404


async def test_forged_cancel_after_authorization_changes_nothing(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    cb = return_url(stack, req.workflow_id)
    resp = await stack.customer.http.get(cb, params={"paymentID": url.payment_id,
                                                     "status": "cancel"}, follow_redirects=True)
    assert "authorized" in resp.text.lower()
    assert (await state(stack, req)).stage is BkashStage.AUTHORIZED
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED


async def test_repeated_redirect_is_absorbed(stack):
    req, url = await pay(stack)
    await stack.sandbox.add_fault("page", "repeat_redirect", match={"paymentID": url.payment_id})
    journey = await stack.customer.approve(url.bkash_url)
    assert "authorized" in journey.final_text.lower()
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    assert (await stack.sandbox.payment(url.payment_id))["execute_count"] == 1


async def test_closed_tab_after_approval_is_authorized_when_the_window_ends(stack):
    req, url = await pay(stack, approval_window=timedelta(seconds=2))
    await stack.sandbox.add_fault("page", "no_redirect", match={"paymentID": url.payment_id})
    journey = await stack.customer.approve(url.bkash_url)
    assert journey.redirect_status is None
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_failed(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.VOIDED
    assert money(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        ("AUTHORIZE", req.amount_poisha), ("VOID", req.amount_poisha)]
    # The window's end executes once; execute answered, so no query.
    assert await bkash_calls(stack, req) == {"create": 1, "execute": 1, "query": 0, "capture": 0,
                                             "void": 1}


async def test_no_approval_within_the_window_expires_without_money(stack):
    req, url = await pay(stack, approval_window=timedelta(seconds=1))
    res = await result(stack, req)
    assert res.stage is BkashStage.EXPIRED
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []


async def test_state_query_and_stage_listing_show_the_payment(stack):
    req, url = await pay(stack)
    s = await payment_state(stack.client, req.invoice_number)
    assert s.bkash_url == url.bkash_url and s.amount_poisha == 50000
    assert [e.stage for e in s.timeline][:2] == [BkashStage.CREATING, BkashStage.AWAITING_APPROVAL]
    rows = [r for r in await list_payments(stack.client, "AWAITING_APPROVAL")
            if r["invoice"] == req.invoice_number]
    assert rows and rows[0]["payment_id"] == url.payment_id
    desc = await stack.client.get_workflow_handle(req.workflow_id).describe()
    assert desc.typed_search_attributes.get(sa.PAYMENT_PROVIDER) == "bkash"
    await stack.customer.cancel(url.bkash_url)
    await result(stack, req)


async def test_operator_cancel_of_an_authorized_payment_voids_it(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await stack.client.get_workflow_handle(req.workflow_id).cancel()
    res = await result(stack, req)
    assert res.stage is BkashStage.VOIDED and "operator" in res.detail
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "VOID"]


async def test_operator_cancel_before_approval_ends_cancelled_without_money(stack):
    req, url = await pay(stack)
    await stack.client.get_workflow_handle(req.workflow_id).cancel()
    res = await result(stack, req)
    assert res.stage is BkashStage.CANCELLED
    assert await stack.sandbox.ledger(payment_id=url.payment_id) == []


async def test_bad_input_starts_nothing_and_sends_nothing_to_bkash(stack):
    from types import SimpleNamespace

    from starter import bkash_request
    from temporalio.service import RPCError

    invoice = stack.invoice("BAD<")
    args = SimpleNamespace(invoice=invoice, amount="0.00")
    with pytest.raises(PaymentError) as info:
        bkash_request(args, stack.settings)
    # Both problems at once, each named by the CLI flag the user typed.
    assert "--amount must be positive" in str(info.value) and "--invoice" in str(info.value)
    assert "Value error" not in str(info.value)
    with pytest.raises(RPCError):
        await stack.client.get_workflow_handle(f"bkash-{invoice}").describe()
    assert await stack.sandbox.payments(invoice=invoice) == []
