"""Monetix waits measured in half hours, on the time-skipping test server (time moved explicitly)."""

from datetime import timedelta

from tests.support.monetix import purchase_result, start_gate, start_page
from contracts.monetix import MonetixStage


async def test_customer_never_submitting_a_transaction_id_expires_after_the_window(ts_env, ts_stack):
    req, instructions = await start_gate(ts_stack)  # default window: 30 min
    assert instructions.stage is MonetixStage.AWAITING_TRANSACTION_ID
    await ts_env.sleep(timedelta(minutes=31))
    res = await purchase_result(ts_stack, req)
    assert res.outcome is MonetixStage.EXPIRED and "transaction ID" in res.detail
    ledger = await ts_stack.monetix.ledger(payment_id=req.sale.payment_id)
    assert [e for e in ledger if e["kind"] == "SETTLED"] == []


async def test_payment_page_never_used_expires_after_the_result_window(ts_env, ts_stack):
    req, page = await start_page(ts_stack)  # default result window: 45 min
    await ts_env.sleep(timedelta(minutes=46))
    await ts_env.sleep(timedelta(minutes=1))
    res = await purchase_result(ts_stack, req)
    assert res.outcome is MonetixStage.EXPIRED and "never paid" in res.detail
