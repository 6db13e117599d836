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


async def test_a_clarification_never_answered_ends_the_purchase_expired(ts_env, ts_stack):
    # Monetix asks for the account number (omitted in the sale); nobody answers. The window ends
    # with a status request that reports nothing final: the purchase must close for the books,
    # not open another 30-minute window forever.
    req, shown = await start_gate(ts_stack, account=None)
    assert shown.stage is MonetixStage.AWAITING_CLARIFICATION
    await ts_env.sleep(timedelta(minutes=31))
    res = await purchase_result(ts_stack, req)
    assert res.outcome is MonetixStage.EXPIRED
    assert "clarification" in res.detail
    ledger = await ts_stack.monetix.ledger(payment_id=req.sale.payment_id)
    assert [e for e in ledger if e["kind"] == "SETTLED"] == []
    history = await ts_stack.client.get_workflow_handle(req.workflow_id).fetch_history()
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    # Summaries are payloads, encrypted like the rest: decode them as the Web UI does.
    summaries = await ts_stack.client.data_converter.decode(
        [t.user_metadata.summary for t in timers])
    assert sum('clarification window' in str(s) for s in summaries) == 1
