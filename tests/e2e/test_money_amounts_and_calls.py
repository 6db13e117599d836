"""What a merchant's reconciliation and bKash's UAT check besides the final stage: the amounts that
moved at bKash are the invoice's to the poisha, and the calls bKash received are the ones the
lifecycle allows (one execute, no Query Payment after a successful execute, one capture or void).
Counted by the sandbox (GET /admin/calls) as the calls arrive, faulted ones included."""

from __future__ import annotations

from merchant_client import report_service_delivered
from contracts.bkash import BkashStage
from tests.support.bkash import pay, result, state, wait_for_stage

PAYMENT_CALLS = ("create", "execute", "query", "capture", "void")


def money(ledger: list[dict]) -> list[tuple[str, str, int]]:
    return [(entry["kind"], entry["amount"], entry["amount_poisha"]) for entry in ledger]


async def calls(stack, *, payment_id: str | None = None, invoice: str | None = None) -> dict:
    counted = await stack.sandbox.calls(payment_id=payment_id, invoice=invoice)
    return {op: counted[op] for op in PAYMENT_CALLS}


async def test_bkash_authorizes_and_captures_exactly_the_invoice_amount(stack):
    req, url = await pay(stack, amount_poisha=123450)  # 1234.50 BDT: poisha and thousands
    payment = await stack.sandbox.payment(url.payment_id)
    assert payment["amount_as_sent"] == "1234.50" and payment["amount_poisha"] == 123450
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    res = await result(stack, req)
    assert res.stage is BkashStage.CAPTURED and res.amount_poisha == 123450
    assert money(await stack.sandbox.ledger(invoice=req.invoice_number)) == [
        ("AUTHORIZE", "1234.50", 123450), ("CAPTURE", "1234.50", 123450)]
    # execute, query and capture echo the amount; a different one would be recorded as a problem.
    assert (await state(stack, req)).last_error is None


async def test_successful_execute_is_never_followed_by_a_query(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    # Authorized and held: bKash has seen one execute and no query.
    assert await calls(stack, payment_id=url.payment_id) == {
        "create": 0, "execute": 1, "query": 0, "capture": 0, "void": 0}
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert await calls(stack, invoice=req.invoice_number) == {
        "create": 1, "execute": 1, "query": 0, "capture": 1, "void": 0}


async def test_execute_lost_before_commit_queries_once_then_pays_a_new_payment_without_query(stack):
    req, url = await pay(stack)
    await stack.sandbox.add_fault("execute", "drop_connection", commit=False,
                                  match={"paymentID": url.payment_id})
    await stack.customer.approve(url.bkash_url)
    second = (await state(stack, req)).payment_id
    assert second != url.payment_id
    s = await state(stack, req)
    await stack.customer.approve(s.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    # The lost execute is the one case for a query; the new payment's execute answered.
    assert await calls(stack, payment_id=url.payment_id) == {
        "create": 0, "execute": 1, "query": 1, "capture": 0, "void": 0}
    assert await calls(stack, payment_id=second) == {
        "create": 0, "execute": 1, "query": 0, "capture": 1, "void": 0}
    assert (await calls(stack, invoice=req.invoice_number))["create"] == 2
    assert money(await stack.sandbox.ledger(invoice=req.invoice_number)) == [
        ("AUTHORIZE", "500.00", req.amount_poisha), ("CAPTURE", "500.00", req.amount_poisha)]
