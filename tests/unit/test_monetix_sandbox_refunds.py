"""The Monetix sandbox refunds as the platform does (reference §3.6, callbacks §4.1, statuses §4.3,
codes §6): partial and multiple refunds of the *paid* amount, 3230 / 3283, signed refund callbacks,
refund operations in the status answer, REFUND ledger lines, and faults on refund requests and
refund callbacks. Driven with the real MonetixGateClient, as the activities use it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from embedded import serve_asgi
from providers.monetix import (
    MonetixDuplicateRefund,
    MonetixGateClient,
    MonetixGateConfig,
    MonetixPaymentNotFound,
    MonetixRefundOverLimit,
    MonetixRequestRejected,
    MonetixResultUnknown,
)
from providers.monetix_signing import verify
from sandbox.monetix import MonetixSandboxConfig, create_app
from sandbox.monetix.admin import MonetixSandboxAdminError
from tests.unit.test_monetix_sandbox import (  # noqa: F401 - fixtures
    CALLBACK_URL,
    CONFIG,
    KEY,
    REQUEST_ID,
    FakeClock,
    Monetix,
    finish,
    make_monetix,
    merchant_app,
    monetix,
)

REFUND_PATH = CONFIG.refund_path


async def paid(m: Monetix, amount: int = 100000, **pay: Any) -> str:
    """A Gate purchase the customer paid (``pay``: e.g. amount=90050 pays a different sum)."""
    payment_id = await m.instructed(amount=amount)
    final = await finish(m, payment_id, **pay)
    assert final["payment"]["status"] == "success"
    return payment_id


async def refund(m: Monetix, payment_id: str, amount: int, refund_id: str, description: str = "returned",
                 callback_url: str | None = CALLBACK_URL) -> str:
    ack = await m.gate.refund(payment_id, amount, "BDT", description, refund_id, callback_url)
    assert ack.payment_id == payment_id and REQUEST_ID.match(ack.request_id or "")
    return ack.request_id or ""


def refund_callbacks(m: Monetix, payment_id: str) -> list[dict[str, Any]]:
    return [b for b in m.callbacks(payment_id) if b["operation"]["type"] == "refund"]


def refund_body(payment_id: str, **payment: Any) -> dict[str, Any]:
    return {"general": {"project_id": CONFIG.project_id, "payment_id": payment_id},
            "payment": {"amount": 10000, "currency": "BDT", "description": "x",
                        "merchant_refund_id": "R-raw"} | payment}


# --- the refund ----------------------------------------------------------------------------------


async def test_partial_refunds_are_acknowledged_then_reported_by_signed_refund_callbacks(monetix: Monetix):
    payment_id = await paid(monetix)
    first_request = await refund(monetix, payment_id, 30000, "R-1", description="one item returned")
    await monetix.settle()
    [cb] = refund_callbacks(monetix, payment_id)
    assert verify(cb, KEY)
    op = cb["operation"]
    assert (op["type"], op["status"], op["code"], op["message"]) == ("refund", "success", "0", "Success")
    assert op["request_id"] == first_request and isinstance(op["id"], int)
    assert op["sum_initial"] == op["sum_converted"] == {"amount": 30000, "currency": "BDT"}
    assert len(op["provider"]["payment_id"]) == 10  # the refund's bKash transaction ID
    # §4.3: the purchase is now partially refunded; payment.sum is what is left of it.
    assert cb["payment"]["status"] == "partially refunded"
    assert cb["payment"]["sum"] == {"amount": 70000, "currency": "BDT"}
    assert cb["payment"]["merchant_refund_id"] == "R-1" and cb["account"]["number"] == "01712345678"

    await refund(monetix, payment_id, 70000, "R-2")
    await monetix.settle()
    last = refund_callbacks(monetix, payment_id)[-1]
    assert (last["payment"]["status"], last["payment"]["sum"]["amount"]) == ("refunded", 0)
    ledger = await monetix.admin.ledger(payment_id)
    assert [(e["kind"], e["amount"]) for e in ledger] == [
        ("CUSTOMER_PAID", 100000), ("SETTLED", 100000), ("REFUND", 30000), ("REFUND", 70000)]
    assert ledger[2]["transaction_id"] == op["provider"]["payment_id"] and ledger[2]["wallet"] == "01712345678"
    view = await monetix.admin.payment(payment_id)
    assert (view["status"], view["refunded_amount"], view["refundable_amount"]) == ("refunded", 100000, 0)
    assert [(r["merchant_refund_id"], r["status"]) for r in view["refunds"]] == [("R-1", "success"), ("R-2", "success")]
    assert (await monetix.admin.stats())["refund_requests"] == 2


async def test_status_answer_lists_refund_operations_beside_the_sale(monetix: Monetix):
    payment_id = await paid(monetix)
    first = await refund(monetix, payment_id, 20000, "R-a")
    second = await refund(monetix, payment_id, 20000, "R-b")
    monetix.clock.advance(CONFIG.min_status_delay_seconds)
    refunds = await monetix.gate.refund_status(payment_id)
    assert refunds.snapshot.signature_verified and refunds.payment_status == "partially refunded"
    assert refunds.balance_poisha == 60000 and refunds.merchant_refund_id == "R-b"  # the latest's
    assert [(r.request_id, r.status, r.amount_poisha) for r in refunds.refunds] == [
        (first, "success", 20000), (second, "success", 20000)]
    sale_op = refunds.snapshot.operations[0]
    assert (sale_op.type, sale_op.status, sale_op.initial_poisha) == ("sale", "success", 100000)
    assert refunds.find(request_id=first) == refunds.refunds[0]
    assert refunds.find(merchant_refund_id="R-b") == refunds.refunds[1]
    known = [refunds.refunds[0].id or ""]
    assert refunds.find(amount_poisha=20000, known_operation_ids=known) == refunds.refunds[1]


async def test_refundable_amount_is_what_the_customer_paid_not_what_was_asked(monetix: Monetix):
    payment_id = await paid(monetix)
    changed = await monetix.instructed(amount=100000)
    await finish(monetix, changed, amount=90050)  # §4.5: the customer paid 900.50 BDT
    with pytest.raises(MonetixRefundOverLimit) as over:
        await refund(monetix, changed, 100000, "R-over")
    assert over.value.code == "3283" and "has 90050 poisha left to refund" in str(over.value)
    await refund(monetix, changed, 90050, "R-all")  # not a multiple of 10 BDT: what was paid
    await monetix.settle()
    assert refund_callbacks(monetix, changed)[-1]["payment"]["status"] == "refunded"
    assert [e["amount"] for e in await monetix.admin.ledger(changed) if e["kind"] == "REFUND"] == [90050]
    assert (await monetix.admin.payment(payment_id))["refundable_amount"] == 100000


async def test_over_refund_is_3283_and_a_processing_refund_holds_its_amount(make_monetix):
    m = make_monetix(refund_processing_seconds=60)
    payment_id = await paid(m)
    request_id = await refund(m, payment_id, 60000, "R-1")
    await m.settle()
    assert refund_callbacks(m, payment_id) == []  # still processing: no result yet
    processing = (await m.gate.refund_status(payment_id)).find(request_id=request_id)
    assert processing is not None and (processing.status, processing.code) == ("processing", "9999")
    with pytest.raises(MonetixRefundOverLimit):
        await refund(m, payment_id, 50000, "R-2")  # 60000 held + 50000 > 100000
    await refund(m, payment_id, 40000, "R-3")
    with pytest.raises(MonetixRefundOverLimit):
        await refund(m, payment_id, 1, "R-4")
    assert [e["kind"] for e in await m.admin.ledger(payment_id)] == ["CUSTOMER_PAID", "SETTLED"]
    m.clock.advance(60)
    refunds = await m.gate.refund_status(payment_id)  # any request completes what is due
    assert [r.status for r in refunds.refunds] == ["success", "success"] and refunds.payment_status == "refunded"
    await m.settle()
    assert [cb["payment"]["merchant_refund_id"] for cb in refund_callbacks(m, payment_id)] == ["R-1", "R-3"]


async def test_a_reused_merchant_refund_id_is_3230_whatever_the_amount(monetix: Monetix):
    payment_id = await paid(monetix)
    await refund(monetix, payment_id, 10000, "R-1")
    for amount in (10000, 20000, 500000):  # the same, another, and one over the limit: all 3230
        with pytest.raises(MonetixDuplicateRefund) as dup:
            await refund(monetix, payment_id, amount, "R-1")
        assert dup.value.code == "3230" and "status request" in str(dup.value)
    # Within the project by default [I]: another payment cannot take the id either.
    other = await paid(monetix)
    with pytest.raises(MonetixDuplicateRefund):
        await refund(monetix, other, 10000, "R-1")
    assert [e["amount"] for e in await monetix.admin.ledger(payment_id) if e["kind"] == "REFUND"] == [10000]
    assert await monetix.admin.refunds(other) == []


async def test_a_declined_refund_id_stays_used_and_scope_payment_frees_other_payments(make_monetix):
    m = make_monetix(merchant_refund_id_scope="payment")
    payment_id = await paid(m)
    await m.admin.decline_next_refund(payment_id)
    await refund(m, payment_id, 10000, "R-1")
    with pytest.raises(MonetixDuplicateRefund):
        await refund(m, payment_id, 10000, "R-1")
    other = await paid(m)
    await refund(m, other, 10000, "R-1")  # another payment's refunds are another scope
    assert [r["status"] for r in await m.admin.refunds(other)] == ["success"]


async def test_declined_refund_moves_nothing_and_frees_its_amount(monetix: Monetix):
    payment_id = await paid(monetix)
    fault = await monetix.admin.decline_next_refund(payment_id)
    assert (fault["operation"], fault["kind"]) == ("refund", "decline")
    request_id = await refund(monetix, payment_id, 100000, "R-declined")
    await monetix.settle()
    [cb] = refund_callbacks(monetix, payment_id)
    op = cb["operation"]
    assert (op["status"], op["code"], op["message"], op["request_id"]) == \
        ("decline", "20000", "General decline", request_id)
    assert cb["payment"]["status"] == "success" and cb["payment"]["sum"]["amount"] == 100000
    assert cb["payment"]["merchant_refund_id"] == "R-declined" and verify(cb, KEY)
    assert [e["kind"] for e in await monetix.admin.ledger(payment_id)] == ["CUSTOMER_PAID", "SETTLED"]
    assert (await monetix.admin.payment(payment_id))["refundable_amount"] == 100000
    await refund(monetix, payment_id, 100000, "R-again")  # the fault was used up
    await monetix.settle()
    assert refund_callbacks(monetix, payment_id)[-1]["operation"]["status"] == "success"


async def test_decline_fault_can_name_its_code(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.decline_next_refund(payment_id, code="20105")
    await refund(monetix, payment_id, 10000, "R-1")
    record = await monetix.admin.wait_for_refund_callback(payment_id, merchant_refund_id="R-1")
    assert (record["operation_status"], record["body"]["operation"]["code"]) == ("decline", "20105")


async def test_only_a_paid_purchase_can_be_refunded(monetix: Monetix):
    waiting = await monetix.instructed()
    with pytest.raises(MonetixRequestRejected) as refused:
        await refund(monetix, waiting, 10000, "R-1")
    assert refused.value.code == "3060" and "only a successful (paid) purchase" in str(refused.value)
    declined = await monetix.instructed()
    await finish(monetix, declined, wallet="01823074817")
    with pytest.raises(MonetixRequestRejected, match="3060"):
        await refund(monetix, declined, 10000, "R-2")
    with pytest.raises(MonetixRequestRejected) as unknown:
        await refund(monetix, "bk_never_sold", 10000, "R-3")
    assert unknown.value.code == "3061"
    assert (await monetix.admin.stats())["rejections"] == {"3060": 2, "3061": 1}


@pytest.mark.parametrize(("payment", "code", "field"), [
    ({"currency": "USD"}, "3284", "payment.currency"),
    ({"amount": 0}, "502", "payment.amount"),
    ({"amount": 100.5}, "502", "payment.amount"),
    ({"amount": None}, "2004", "payment.amount"),
    ({"merchant_refund_id": ""}, "502", "payment.merchant_refund_id"),
])
async def test_malformed_refunds_are_refused_with_the_registry_codes(monetix: Monetix, payment: dict, code: str,
                                                                    field: str):
    payment_id = await paid(monetix)
    answer = await monetix.post(REFUND_PATH, refund_body(payment_id, **payment))
    assert answer.status_code == 400
    assert (answer.json()["code"], answer.json()["errors"][0]["field"]) == (code, field)
    assert await monetix.admin.refunds(payment_id) == []


async def test_refund_needs_a_valid_signature_and_knows_only_bkash(monetix: Monetix):
    payment_id = await paid(monetix)
    assert (await monetix.post(REFUND_PATH, refund_body(payment_id), key="wrong")).json()["code"] == "3261"
    assert (await monetix.post(REFUND_PATH, refund_body(payment_id), key=None)).json()["code"] == "3262"
    other_method = await monetix.post("/v2/payment/wallet/nagad/refund", refund_body(payment_id))
    assert other_method.json()["code"] == "2541"
    # Without merchant_refund_id (optional at Monetix) a refund is accepted, and cannot be told apart.
    body = refund_body(payment_id)
    del body["payment"]["merchant_refund_id"]
    assert (await monetix.post(REFUND_PATH, body)).json()["status"] == "success"
    assert await monetix.admin.refunds(payment_id) != []


async def test_refund_path_is_configurable(make_monetix):
    m = make_monetix(refund_path="/v2/payment/bkash/refund")
    payment_id = await paid(m)
    m.gate = MonetixGateClient(m.http, MonetixGateConfig(base_url=m.base, project_id=CONFIG.project_id,
                                                         secret_key=KEY, refund_path="/v2/payment/bkash/refund"))
    await refund(m, payment_id, 10000, "R-1")
    assert [r["status"] for r in await m.admin.refunds(payment_id)] == ["success"]


# --- faults on the refund request ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop_connection", "http_error"])
async def test_refund_answer_lost_after_commit_is_registered_and_found_by_status(monetix: Monetix, kind: str):
    payment_id = await paid(monetix)
    await monetix.admin.add_fault("refund", kind, commit=True, match={"payment_id": payment_id})
    with pytest.raises(MonetixResultUnknown):
        await refund(monetix, payment_id, 30000, "R-lost")
    refunds = await monetix.gate.refund_status(payment_id)
    found = refunds.find(merchant_refund_id="R-lost")
    assert found is not None and found.status == "success" and found.amount_poisha == 30000
    with pytest.raises(MonetixDuplicateRefund):  # sending again cannot refund twice
        await refund(monetix, payment_id, 30000, "R-lost")
    assert [e["amount"] for e in await monetix.admin.ledger(payment_id) if e["kind"] == "REFUND"] == [30000]


async def test_refund_5xx_before_commit_registers_nothing(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.add_fault("refund", "http_error", status=502, match={"payment_id": payment_id})
    with pytest.raises(MonetixResultUnknown, match="HTTP 502"):
        await refund(monetix, payment_id, 30000, "R-1")
    assert (await monetix.gate.refund_status(payment_id)).refunds == []
    await refund(monetix, payment_id, 30000, "R-1")  # never registered: sending it is safe
    assert len(await monetix.admin.refunds(payment_id)) == 1


async def test_refund_error_code_fault_refuses_without_applying(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.add_fault("refund", "error_code", code="3283", match={"payment_id": payment_id})
    with pytest.raises(MonetixRefundOverLimit):
        await refund(monetix, payment_id, 30000, "R-1")
    assert await monetix.admin.refunds(payment_id) == []


async def test_refund_answer_slower_than_the_timeout_is_result_unknown_but_applied():
    merchant = merchant_app()
    sandbox = create_app(MonetixSandboxConfig(callback_retry_delays=[0.1]))
    async with serve_asgi(sandbox) as sandbox_base, serve_asgi(merchant) as merchant_base, \
            httpx.AsyncClient(timeout=5) as http:
        m = Monetix(http, sandbox_base, None, merchant, FakeClock(), callback_url=f"{merchant_base}/monetix/callback")
        payment_id = await m.sale()
        trx = await m.customer.pay_in_bkash(payment_id)
        await m.gate.clarification(payment_id, {"transaction_id": trx})
        await m.admin.wait_for_callback(payment_id, "success")
        await m.admin.add_fault("refund", "delay_after_commit", delay_seconds=1.0, match={"payment_id": payment_id})
        started = time.monotonic()
        with pytest.raises(MonetixResultUnknown, match="no answer"):
            await m.client(KEY, timeout=0.3).refund(payment_id, 30000, "BDT", "late", "R-slow", m.callback_url)
        assert time.monotonic() - started < 1.0
        record = await m.admin.wait_for_refund_callback(payment_id, merchant_refund_id="R-slow")
        assert record["operation_status"] == "success" and verify(record["body"], KEY)
        assert [r["merchant_refund_id"] for r in await m.admin.refunds(payment_id)] == ["R-slow"]


# --- faults on refund callbacks -----------------------------------------------------------------


async def test_duplicate_refund_callback_is_the_same_signed_body_twice(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.add_fault("callback", "duplicate",
                                  match={"payment_id": payment_id, "operation_type": "refund"})
    await refund(monetix, payment_id, 30000, "R-1")
    await monetix.settle()
    first, second = refund_callbacks(monetix, payment_id)
    assert first == second
    kinds = [(c["operation_type"], c["kind"]) for c in (await monetix.admin.payment(payment_id))["callbacks"]]
    assert kinds[-2:] == [("refund", "callback"), ("refund", "duplicate")]
    assert [e["kind"] for e in await monetix.admin.ledger(payment_id)].count("REFUND") == 1


async def test_lost_refund_callback_leaves_the_truth_to_the_status_request(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.add_fault("callback", "lose", match={"payment_id": payment_id, "operation_type": "refund"})
    request_id = await refund(monetix, payment_id, 30000, "R-1")
    await monetix.settle()
    assert refund_callbacks(monetix, payment_id) == []
    found = (await monetix.gate.refund_status(payment_id)).find(request_id=request_id)
    assert found is not None and found.status == "success"
    record = (await monetix.admin.payment(payment_id))["callbacks"][-1]
    assert (record["operation_type"], record["delivery"]) == ("refund", "lost")


async def test_refund_callbacks_can_be_held_back_or_replayed_late(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.add_fault("callback", "delay", delay_seconds=0.5,
                                  match={"payment_id": payment_id, "operation_type": "refund"})
    await monetix.admin.add_fault("callback", "late_replay", delay_seconds=0.1,
                                  match={"payment_id": payment_id, "status": "refunded"})
    await refund(monetix, payment_id, 30000, "R-1")
    await asyncio.sleep(0.05)
    assert refund_callbacks(monetix, payment_id) == []
    await refund(monetix, payment_id, 70000, "R-2")
    await monetix.settle()
    statuses = [(cb["payment"]["merchant_refund_id"], cb["payment"]["status"]) for cb in refund_callbacks(monetix, payment_id)]
    # The older refund's callback arrives last, stale: payment.status is not the payment's any more.
    assert statuses == [("R-2", "refunded"), ("R-2", "refunded"), ("R-1", "partially refunded")]


async def test_refund_faults_are_checked(monetix: Monetix):
    for bad in ({"operation": "sale", "kind": "decline"},
                {"operation": "refund", "kind": "decline", "commit": True},
                {"operation": "refund", "kind": "lose"},
                {"operation": "refund", "kind": "http_error", "match": {"operation_type": "refund"}},
                {"operation": "callback", "kind": "lose", "match": {"operation_type": "payout"}}):
        with pytest.raises(MonetixSandboxAdminError, match="422"):
            await monetix.admin.add_fault(**bad)
    assert await monetix.admin.faults() == []


async def test_a_refund_request_fault_spares_the_decline_fault_and_vice_versa(monetix: Monetix):
    payment_id = await paid(monetix)
    await monetix.admin.decline_next_refund(payment_id)
    await monetix.admin.add_fault("refund", "drop_connection", match={"payment_id": payment_id})
    with pytest.raises(MonetixResultUnknown):
        await refund(monetix, payment_id, 30000, "R-1")  # dropped before commit: nothing registered
    assert await monetix.admin.refunds(payment_id) == []
    await refund(monetix, payment_id, 30000, "R-1")
    assert [r["status"] for r in await monetix.admin.refunds(payment_id)] == ["decline"]


async def test_reset_forgets_refunds(monetix: Monetix):
    payment_id = await paid(monetix)
    await refund(monetix, payment_id, 30000, "R-1")
    await monetix.admin.reset()
    assert await monetix.admin.ledger() == [] and (await monetix.admin.stats())["refund_requests"] == 0
    with pytest.raises(MonetixPaymentNotFound):
        await monetix.gate.refund_status(payment_id)
