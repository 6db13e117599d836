"""Monetix bKash purchases end to end: the dev server, the Monetix sandbox sending signed callbacks
over loopback HTTP to the merchant endpoint, which verifies them and hands them to the workflow.
Assertions are on the sandbox's own record (ledger, clarifications received, callbacks delivered)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError

from providers.monetix_signing import sign
from merchant_client import PaymentError, provide_clarification, start_gate_purchase, submit_transaction_id
from tests.conftest import MONETIX
from tests.support.monetix import (
    CUSTOMER,
    purchase_result,
    purchase_state,
    start_gate,
    start_page,
    wait_for,
)
from workflows import search_attributes as sa
from workflows.monetix_gate import MonetixGatePurchase
from contracts.monetix import (
    MonetixPurchaseRequest,
    MonetixStage,
    TransactionIdSubmission,
)


def settled(ledger: list[dict]) -> list[int]:
    return [e["amount"] for e in ledger if e["kind"] == "SETTLED"]


def money(ledger: list[dict]) -> list[tuple[str, int]]:
    """Each movement at Monetix and its amount in minor units (poisha)."""
    return [(e["kind"], e["amount"]) for e in ledger]


async def test_gate_purchase_with_instructions_and_transaction_id_succeeds(stack):
    req, instructions = await start_gate(stack)
    assert instructions.stage is MonetixStage.AWAITING_TRANSACTION_ID
    account = [d.data for d in instructions.display_data if d.title == "account_number"]
    assert account == [MONETIX.receiver_account]
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS
    assert res.paid_poisha == 100000 and not res.amount_changed
    assert res.provider_payment_id and res.account_number == "01712345678"
    assert money(await stack.monetix.ledger(payment_id=req.sale.payment_id)) == [
        ("CUSTOMER_PAID", req.sale.amount_poisha), ("SETTLED", req.sale.amount_poisha)]
    payment = await stack.monetix.payment(req.sale.payment_id)
    assert payment["requested_amount"] == req.sale.amount_poisha  # what the sale asked Monetix for
    assert len(payment["clarifications"]) == 1
    desc = await stack.client.get_workflow_handle(req.workflow_id).describe()
    assert desc.typed_search_attributes.get(sa.PAYMENT_STAGE) == "SUCCESS"
    assert desc.typed_search_attributes.get(sa.PAYMENT_PROVIDER) == "monetix"


async def test_insufficient_balance_is_declined_with_the_platform_code(stack):
    req, _ = await start_gate(stack)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id, wallet="01823074817")
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.DECLINED and res.decline_code == "20105"
    assert res.paid_poisha is None
    assert settled(await stack.monetix.ledger(payment_id=req.sale.payment_id)) == []


async def test_an_unknown_transaction_id_is_declined(stack):
    req, _ = await start_gate(stack)
    await submit_transaction_id(stack.client, req.sale.payment_id, "ZZZZ999999")
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.DECLINED and res.decline_code == "20000"


async def test_customer_paying_a_different_amount_is_credited_what_was_paid(stack):
    req, _ = await start_gate(stack, amount=100000)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id, amount=120000)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS
    assert res.requested_poisha == 100000 and res.paid_poisha == 120000 and res.amount_changed
    assert settled(await stack.monetix.ledger(payment_id=req.sale.payment_id)) == [120000]


async def test_omitted_account_number_is_asked_by_clarification_then_succeeds(stack):
    req, instructions = await start_gate(stack, account=None)
    assert instructions.stage is MonetixStage.AWAITING_CLARIFICATION
    assert instructions.clarification_fields and "account" in instructions.clarification_fields
    after = await provide_clarification(stack.client, req.sale.payment_id,
                                        {"account": {"number": "01798765432"}})
    assert after.stage in (MonetixStage.AWAITING_CLARIFICATION, MonetixStage.AWAITING_INSTRUCTIONS,
                           MonetixStage.AWAITING_TRANSACTION_ID)
    await wait_for(stack, req, MonetixStage.AWAITING_TRANSACTION_ID)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS and res.account_number == "01798765432"
    assert len((await stack.monetix.payment(req.sale.payment_id))["clarifications"]) == 2


async def test_lost_final_callback_is_resolved_by_status_polling(stack):
    req, _ = await start_gate(stack, final_callback_wait=timedelta(seconds=1))
    await stack.monetix.add_fault("callback", "lose",
                                  match={"payment_id": req.sale.payment_id, "status": "success"})
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS and res.paid_poisha == 100000
    state = await purchase_state(stack, req)
    assert any(e.event.startswith("status: payment 'success'") for e in state.timeline)
    # This purchase's status requests came after Monetix's minimum delay (the sandbox's counter is
    # per payment: the session's sandbox is shared, other tests ask early on purpose).
    assert (await stack.monetix.payment(req.sale.payment_id))["early_status_requests"] == 0


async def test_duplicate_and_out_of_order_callbacks_never_move_the_state_back(stack):
    req, _ = await start_gate(stack)
    pid = req.sale.payment_id
    await stack.monetix.add_fault("callback", "duplicate", match={"payment_id": pid})
    await stack.monetix.add_fault("callback", "out_of_order",
                                  match={"payment_id": pid, "status": "success"})
    trx = await stack.monetix_customer.pay_in_bkash(pid)
    await submit_transaction_id(stack.client, pid, trx)
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS
    state = await purchase_state(stack, req)
    assert state.stage is MonetixStage.SUCCESS
    assert state.callbacks_applied == 2  # instructions, final: each applied once
    assert settled(await stack.monetix.ledger(payment_id=pid)) == [100000]


@pytest.mark.parametrize("bad,why", [("", "empty"), ("   ", "empty"), ("abc", "6-20 letters"),
                                     ("TRX-123-456", "6-20 letters"), ("X" * 40, "6-20 letters")])
async def test_malformed_transaction_id_is_rejected_without_touching_history(stack, bad, why):
    req, _ = await start_gate(stack)
    handle = stack.client.get_workflow_handle(req.workflow_id)
    before = len((await handle.fetch_history()).events)
    with pytest.raises(PaymentError, match=why):
        await submit_transaction_id(stack.client, req.sale.payment_id, bad)
    assert len((await handle.fetch_history()).events) == before
    assert (await purchase_state(stack, req)).stage is MonetixStage.AWAITING_TRANSACTION_ID
    assert (await stack.monetix.payment(req.sale.payment_id))["clarifications"] == []
    await handle.cancel()


async def test_transaction_id_by_signal_shares_the_validation(stack):
    req, _ = await start_gate(stack)
    handle = stack.client.get_workflow_handle(req.workflow_id)
    await handle.signal(MonetixGatePurchase.transaction_id, TransactionIdSubmission(transaction_id="!"))
    state = await purchase_state(stack, req)
    assert state.rejected_transaction_ids and state.stage is MonetixStage.AWAITING_TRANSACTION_ID
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await handle.signal(MonetixGatePurchase.transaction_id, TransactionIdSubmission(transaction_id=trx))
    assert (await purchase_result(stack, req)).outcome is MonetixStage.SUCCESS


async def test_transaction_id_in_the_wrong_state_is_rejected(stack):
    req, _ = await start_gate(stack)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    with pytest.raises(PaymentError, match="accepted only while"):
        await submit_transaction_id(stack.client, req.sale.payment_id, "OTHER12345")
    await purchase_result(stack, req)
    assert len((await stack.monetix.payment(req.sale.payment_id))["clarifications"]) == 1


async def test_no_transaction_id_within_the_window_expires(stack):
    req, _ = await start_gate(stack, transaction_id_window=timedelta(seconds=1))
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.EXPIRED
    assert settled(await stack.monetix.ledger(payment_id=req.sale.payment_id)) == []


async def test_second_start_returns_the_running_purchase(stack):
    req, first = await start_gate(stack)
    again = await start_gate_purchase(stack.client, req, task_queue=stack.settings.task_queue)
    assert again.payment_id == first.payment_id and again.display_data == first.display_data
    await stack.client.get_workflow_handle(req.workflow_id).cancel()


@pytest.mark.parametrize("change,rule", [({"amount": 9550}, "multiple of 10 BDT"),
                                         ({"amount": 0}, "payment.amount"),
                                         ({"currency": "USD"}, "BDT"),
                                         ({"account_number": "0171-234"}, "account.number"),
                                         ({"customer": {**CUSTOMER, "email": "nope"}}, "email"),
                                         ({"customer": {**CUSTOMER, "ip_address": "1.2.3"}},
                                          "ip_address")])
async def test_invalid_sale_is_refused_before_anything_is_sent(stack, change, rule):
    sale = {"payment_id": "mx-invalid", "amount": 100000, "customer": CUSTOMER, **change}
    with pytest.raises(ValidationError, match=rule):
        MonetixPurchaseRequest(sale=sale, callback_base_url=stack.endpoint_url)
    assert (await stack.monetix.payments()) == [] or all(
        p.get("payment_id") != "mx-invalid" for p in await stack.monetix.payments())


async def test_callbacks_with_bad_signatures_reach_no_workflow(stack):
    req, _ = await start_gate(stack)
    handle = stack.client.get_workflow_handle(req.workflow_id)
    before = len((await handle.fetch_history()).events)
    body = {"project_id": MONETIX.project_id,
            "payment": {"id": req.sale.payment_id, "type": "purchase", "status": "success",
                        "sum": {"amount": 100000, "currency": "BDT"}},
            "operation": {"id": 99, "type": "sale", "status": "success", "code": "0"}}
    url = f"{stack.endpoint_url}/monetix/callback"
    async with httpx.AsyncClient() as http:
        missing = await http.post(url, json=body)
        forged = await http.post(url, json={**body, "signature": sign(body, "wrong-key")})
        other = await http.post(url, json={**body, "project_id": 4321,
                                           "signature": sign({**body, "project_id": 4321},
                                                             "another-merchants-key")})
        tampered_body = dict(body, signature=sign(body, MONETIX.secret_key))
        tampered_body["payment"] = {**body["payment"], "sum": {"amount": 1, "currency": "BDT"}}
        tampered = await http.post(url, json=tampered_body)
        unknown = {**body, "payment": {**body["payment"], "id": "mx-nobody"}}
        unknown_resp = await http.post(url, json={**unknown, "signature": sign(unknown, MONETIX.secret_key)})
    assert [missing.status_code, forged.status_code, other.status_code, tampered.status_code] == \
        [400, 400, 400, 400]
    assert unknown_resp.status_code == 404
    assert len((await handle.fetch_history()).events) == before
    await handle.cancel()


async def test_payment_page_purchase_succeeds_from_the_signed_link(stack):
    req, page = await start_page(stack)
    assert page.payment_page_url and "signature=" in page.payment_page_url
    opened = await stack.monetix_customer.open_payment_page(page.payment_page_url)
    assert opened.status_code == 200
    await stack.monetix_customer.complete_payment_page(MONETIX.project_id, req.params.payment_id,
                                                       "success")
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS and res.paid_poisha == 50000
    assert money(await stack.monetix.ledger(payment_id=req.params.payment_id)) == [
        ("CUSTOMER_PAID", req.params.amount_poisha), ("SETTLED", req.params.amount_poisha)]
    assert (await stack.monetix.payment(req.params.payment_id))["requested_amount"] == \
        req.params.amount_poisha


async def test_payment_page_decline_ends_declined(stack):
    req, page = await start_page(stack)
    assert (await stack.monetix_customer.open_payment_page(page.payment_page_url)).status_code == 200
    await stack.monetix_customer.complete_payment_page(MONETIX.project_id, req.params.payment_id,
                                                       "decline")
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.DECLINED and res.decline_code


async def test_tampered_payment_page_link_is_refused_by_the_platform(stack):
    req, page = await start_page(stack)
    tampered = page.payment_page_url.replace("payment_amount=50000", "payment_amount=10000")
    assert (await stack.monetix_customer.open_payment_page(tampered)).status_code == 400
    await stack.client.get_workflow_handle(req.workflow_id).cancel()


async def test_a_late_success_after_the_purchase_expired_is_acknowledged_and_flagged(stack, caplog):
    import logging

    req, _ = await start_gate(stack, transaction_id_window=timedelta(seconds=1))
    assert (await purchase_result(stack, req)).outcome is MonetixStage.EXPIRED
    body = {"project_id": MONETIX.project_id,
            "payment": {"id": req.sale.payment_id, "type": "purchase", "status": "success",
                        "sum": {"amount": 100000, "currency": "BDT"}},
            "operation": {"id": 77, "type": "sale", "status": "success", "code": "0"}}
    with caplog.at_level(logging.ERROR, logger="endpoint"):
        async with httpx.AsyncClient() as http:
            resp = await http.post(f"{stack.endpoint_url}/monetix/callback",
                                   json={**body, "signature": sign(body, MONETIX.secret_key)})
    assert resp.status_code == 200  # Monetix must stop re-sending
    assert any("reconcile" in r.getMessage() and req.sale.payment_id in r.getMessage()
               for r in caplog.records)
