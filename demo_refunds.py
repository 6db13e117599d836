"""`make demo`'s refund rows: what a merchant checks after refunding, from the refund ledger and
the sandboxes' own ledgers (REFUND lines)."""

from __future__ import annotations

import time
from datetime import timedelta

from contracts.common import Provider
from contracts.money import format_bdt
from contracts.monetix import MonetixPurchaseRequest
from contracts.refunds import RefundRequest, RefundsInput
from merchant_client import (
    PaymentError,
    payment_result,
    purchase_result,
    refund,
    refunds,
    report_service_delivered,
    start_gate_purchase,
    start_payment,
    submit_transaction_id,
)


async def _captured(demo, name: str, amount_poisha: int):
    req = demo.request(name, amount_poisha)
    url = await start_payment(demo.client, req, task_queue=demo.settings.task_queue)
    await demo.customer.approve(url.bkash_url)
    await demo.authorized(req)
    await report_service_delivered(demo.client, req.invoice_number)
    await payment_result(demo.client, req.invoice_number)
    return req, url


async def _refund(demo, provider: Provider, key: str, refund_id: str, amount: int, **kw):
    ledger = RefundsInput(provider=provider, payment_key=key,
                          callback_base_url=demo.settings.callback_base_url,
                          provider_timeout=timedelta(seconds=3))
    req = RefundRequest(provider=provider, payment_key=key, refund_id=refund_id,
                        amount_poisha=amount, reason=kw.get("reason", "customer asked"),
                        sku="demo" if provider is Provider.BKASH else None)
    return await refund(demo.client, req, task_queue=demo.settings.task_queue, ledger=ledger)


def refund_scenarios(demo, Row) -> list:
    async def partial_twice() -> Row:
        row, started = Row("bKash refund: 300.00 then 200.00 of 1000.00", "REFUNDED 500.00"), \
            time.monotonic()
        req, url = await _captured(demo, "refund-partial", 100000)
        await _refund(demo, Provider.BKASH, req.invoice_number, "RF-1", 30000)
        await _refund(demo, Provider.BKASH, req.invoice_number, "RF-2", 20000)
        ledger = await refunds(demo.client, Provider.BKASH, req.invoice_number)
        row.invoice, row.payment_id = req.invoice_number, url.payment_id or ""
        row.stage = f"REFUNDED {format_bdt(ledger.refunded_poisha)}"
        lines = await demo.sandbox.ledger(payment_id=url.payment_id)
        row.money = " ".join(f"{e['kind']} {e['amount']}" for e in lines) + \
            f" (refundable {format_bdt(ledger.refundable_poisha)})"
        row.seconds = time.monotonic() - started
        return row

    async def over_refund() -> Row:
        row, started = Row("bKash refund: 600.00 of 500.00 → refused, no call", "REFUSED"), \
            time.monotonic()
        req, url = await _captured(demo, "refund-over", 50000)
        try:
            await _refund(demo, Provider.BKASH, req.invoice_number, "RF-OVER", 60000)
            row.stage = "REFUNDED?!"
        except PaymentError:
            row.stage = "REFUSED"
        calls = await demo.sandbox.calls(payment_id=url.payment_id)
        row.invoice, row.payment_id = req.invoice_number, url.payment_id or ""
        row.money = f"refund calls at bKash: {calls.get('refund', 0)}"
        if calls.get("refund", 0):
            row.stage += " (but bKash was called)"
        row.seconds = time.monotonic() - started
        return row

    async def lost_answer() -> Row:
        row, started = Row("bKash refund: answer lost → refund status → one refund",
                           "REFUNDED 250.00 once"), time.monotonic()
        req, url = await _captured(demo, "refund-lost", 80000)
        # bKash applies the refund, then its answer is lost (a 503 from the gateway).
        await demo.sandbox.add_fault("refund", "http_error", commit=True, status=503, times=1,
                                     match={"paymentID": url.payment_id})
        record = await _refund(demo, Provider.BKASH, req.invoice_number, "RF-LOST", 25000)
        lines = [e for e in await demo.sandbox.ledger(payment_id=url.payment_id)
                 if e["kind"] == "REFUND"]
        row.invoice, row.payment_id = req.invoice_number, url.payment_id or ""
        row.stage = (f"REFUNDED {format_bdt(record.amount_poisha)} once" if len(lines) == 1
                     and record.stage.value == "SUCCEEDED" else f"{record.stage.value} x{len(lines)}")
        row.money = " ".join(f"REFUND {e['amount']}" for e in lines) + \
            (" (reconciled by refund status)" if record.reconciled else "")
        row.seconds = time.monotonic() - started
        return row

    async def monetix_partial() -> Row:
        row, started = Row("Monetix refund: 300.00 of 1000.00 by callback", "REFUNDED 300.00"), \
            time.monotonic()
        payment_id = demo.key("monetix-refund")
        req = MonetixPurchaseRequest(
            sale={"payment_id": payment_id, "amount_poisha": 100000,
                  "customer": {"id": "cust-42", "ip_address": "203.0.113.7",
                               "first_name": "Rahim", "last_name": "Uddin",
                               "email": "rahim@example.com"}, "account_number": "01712345678"},
            callback_base_url=demo.settings.callback_base_url,
            final_callback_wait=timedelta(seconds=2), provider_timeout=timedelta(seconds=3))
        await start_gate_purchase(demo.client, req, task_queue=demo.settings.task_queue)
        trx = await demo.monetix_customer.pay_in_bkash(payment_id)
        await submit_transaction_id(demo.client, payment_id, trx)
        await purchase_result(demo.client, payment_id)
        record = await _refund(demo, Provider.MONETIX, payment_id, "MRF-1", 30000)
        lines = await demo.monetix.ledger(payment_id=payment_id)
        row.invoice, row.payment_id = payment_id, record.provider_refund_id or ""
        row.stage = f"REFUNDED {format_bdt(record.amount_poisha)}" \
            if record.stage.value == "SUCCEEDED" else record.stage.value
        row.money = " ".join(f"{e['kind']} {format_bdt(e['amount'])}" for e in lines)
        row.seconds = time.monotonic() - started
        return row

    return [partial_twice(), over_refund(), lost_answer(), monetix_partial()]
