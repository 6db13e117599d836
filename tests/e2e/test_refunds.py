"""Refunds end to end on the dev server, over real HTTP to the sandboxes, asserting on their
ledgers: partial and multiple refunds, over-refunds refused before any call, lost answers resolved
by refund status, refunds of payments that were never captured, Monetix refunds by callback."""

from __future__ import annotations

import asyncio

import pytest

from contracts.bkash import BkashStage
from contracts.common import Provider
from contracts.monetix import MonetixStage
from contracts.refunds import LedgerStage, RefundRequest, RefundsState, RefundStage
from merchant_client import (
    PaymentError,
    refund,
    refunds,
    report_service_delivered,
    report_service_failed,
    submit_transaction_id,
)
from tests.support.bkash import pay, record_history, result, wait_for_stage
from tests.support.monetix import purchase_result, start_gate


async def captured(stack, amount_poisha: int = 100000):
    req, url = await pay(stack, amount_poisha=amount_poisha)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    return req, url


def bkash_refund(req, refund_id: str, amount_poisha: int, **kw) -> RefundRequest:
    return RefundRequest(provider=Provider.BKASH, payment_key=req.invoice_number,
                         refund_id=refund_id, amount_poisha=amount_poisha,
                         reason=kw.pop("reason", "customer cancelled"), sku=kw.pop("sku", "room"))


async def do_refund(stack, req: RefundRequest, **kw):
    record = await refund(stack.client, req, task_queue=stack.settings.task_queue,
                          callback_base_url=stack.endpoint_url, **kw)
    # The ledger's history so far, for the replay tests (RECORD_HISTORIES=1).
    await record_history(stack.client.get_workflow_handle(req.workflow_id), "refunds")
    return record


def refund_lines(ledger: list[dict]) -> list:
    return [e["amount"] for e in ledger if e["kind"] == "REFUND"]


async def test_partial_refunds_add_up_to_the_ledger_and_the_sandbox(stack):
    req, url = await captured(stack)
    first = await do_refund(stack, bkash_refund(req, "RF-1", 30000))
    second = await do_refund(stack, bkash_refund(req, "RF-2", 20000))
    assert first.stage is second.stage is RefundStage.SUCCEEDED
    assert first.provider_refund_id and first.provider_refund_id != second.provider_refund_id
    ledger = await refunds(stack.client, Provider.BKASH, req.invoice_number)
    assert (ledger.captured_poisha, ledger.refunded_poisha, ledger.refundable_poisha) == (
        100000, 50000, 50000)
    assert ledger.stage is LedgerStage.REFUNDABLE
    assert refund_lines(await stack.sandbox.ledger(payment_id=url.payment_id)) == [
        "300.00", "200.00"]


async def test_an_over_refund_is_refused_before_any_call_to_bkash(stack):
    req, url = await captured(stack, amount_poisha=50000)
    await do_refund(stack, bkash_refund(req, "RF-1", 40000))
    with pytest.raises(PaymentError, match="more than the 100.00 BDT still refundable"):
        await do_refund(stack, bkash_refund(req, "RF-2", 20000))
    calls = await stack.sandbox.calls(payment_id=url.payment_id)
    assert calls.get("refund", 0) == 1
    assert refund_lines(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["400.00"]


async def test_the_same_refund_id_moves_money_once(stack):
    req, url = await captured(stack)
    first, again = await asyncio.gather(do_refund(stack, bkash_refund(req, "RF-1", 30000)),
                                        do_refund(stack, bkash_refund(req, "RF-1", 30000)))
    assert first.provider_refund_id == again.provider_refund_id
    with pytest.raises(PaymentError, match="already a refund of 300.00 BDT"):
        await do_refund(stack, bkash_refund(req, "RF-1", 10000))
    assert refund_lines(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["300.00"]


async def test_a_lost_refund_answer_is_resolved_by_refund_status_to_exactly_one_refund(stack):
    req, url = await captured(stack)
    await stack.sandbox.add_fault("refund", "drop_connection", commit=True, times=1,
                                  match={"paymentID": url.payment_id})
    record = await do_refund(stack, bkash_refund(req, "RF-LOST", 25000))
    assert record.stage is RefundStage.SUCCEEDED and record.reconciled
    assert refund_lines(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["250.00"]


async def test_a_payment_never_captured_is_refused_locally(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_failed(stack.client, req.invoice_number, "no room")
    assert (await result(stack, req)).stage is BkashStage.VOIDED
    with pytest.raises(PaymentError, match="ended VOIDED: only a CAPTURED payment"):
        await do_refund(stack, bkash_refund(req, "RF-1", 100))
    running, running_url = await pay(stack)
    with pytest.raises(PaymentError, match="still running"):
        await do_refund(stack, bkash_refund(running, "RF-1", 100))
    with pytest.raises(PaymentError, match="no refunds for bkash payment"):
        await refunds(stack.client, Provider.BKASH, req.invoice_number)
    await stack.customer.cancel(running_url.bkash_url)
    await result(stack, running)


async def test_a_fully_refunded_payment_closes_its_ledger(stack):
    req, url = await captured(stack, amount_poisha=20000)
    await do_refund(stack, bkash_refund(req, "RF-ALL", 20000))
    state = await stack.client.get_workflow_handle(
        f"refunds-bkash-{req.invoice_number}", result_type=RefundsState).result()
    assert state.stage is LedgerStage.FULLY_REFUNDED and state.refunded_poisha == 20000
    with pytest.raises(PaymentError, match="closed \\(FULLY_REFUNDED"):
        await do_refund(stack, bkash_refund(req, "RF-MORE", 100))
    # The finished refund is still found by its id.
    assert (await do_refund(stack, bkash_refund(req, "RF-ALL", 20000))).stage is \
        RefundStage.SUCCEEDED


async def test_a_monetix_partial_refund_succeeds_by_callback(stack):
    req, _ = await start_gate(stack)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    assert (await purchase_result(stack, req)).outcome is MonetixStage.SUCCESS
    record = await do_refund(stack, RefundRequest(
        provider=Provider.MONETIX, payment_key=req.sale.payment_id, refund_id="MRF-1",
        amount_poisha=30000, reason="one night less"))
    assert record.stage is RefundStage.SUCCEEDED
    ledger = await refunds(stack.client, Provider.MONETIX, req.sale.payment_id)
    assert (ledger.refunded_poisha, ledger.refundable_poisha) == (30000, 70000)
    lines = await stack.monetix.ledger(payment_id=req.sale.payment_id)
    assert [e["amount"] for e in lines if e["kind"] == "REFUND"] == [30000]
    assert any(e.event.startswith("callback: refund") for e in ledger.timeline)


async def test_a_refund_accepted_earlier_is_found_after_its_ledger_closed(stack):
    """Found by the chaos run at 1,000 payments: a Monetix refund accepted without waiting, the
    ledger then closed (fully refunded), and the same request sent again with wait=True (a retry
    after the worker was killed) must answer SUCCEEDED, not "no running refunds"."""
    req, _ = await start_gate(stack, amount=30000)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    assert (await purchase_result(stack, req)).outcome is MonetixStage.SUCCESS
    full = RefundRequest(provider=Provider.MONETIX, payment_key=req.sale.payment_id,
                         refund_id="MRF-FULL", amount_poisha=30000, reason="cancelled")
    await do_refund(stack, full, wait=False)
    state = await stack.client.get_workflow_handle(full.workflow_id,
                                                   result_type=RefundsState).result()
    assert state.stage is LedgerStage.FULLY_REFUNDED
    assert (await do_refund(stack, full, wait=True)).stage is RefundStage.SUCCEEDED
