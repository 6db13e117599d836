"""Paths decided by long timers, on the time-skipping test server: a day of hold deadline or a
quarter hour of approval window passes in well under a second.

Time is moved explicitly with ``env.sleep``: the Java test server does not auto-skip while a
workflow has had updates, so waiting on the result alone would wait in real time.
"""

from datetime import timedelta

from merchant_client import report_service_delivered
from tests.support.bkash import kinds, pay, result, wait_for_stage
from contracts.bkash import BkashStage


async def test_no_service_decision_before_the_hold_deadline_voids(ts_env, ts_stack):
    req, url = await pay(ts_stack)  # default hold deadline: 24 h
    await ts_stack.customer.approve(url.bkash_url)
    await wait_for_stage(ts_stack, req, BkashStage.AUTHORIZED)
    await ts_env.sleep(timedelta(hours=23, minutes=59))
    await ts_env.sleep(timedelta(minutes=2))
    res = await result(ts_stack, req)
    assert res.stage is BkashStage.VOIDED
    assert "hold deadline" in res.detail
    assert kinds(await ts_stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "VOID"]


async def test_customer_never_approving_expires_after_the_default_window(ts_env, ts_stack):
    req, url = await pay(ts_stack)  # default approval window: 15 min
    await ts_env.sleep(timedelta(minutes=16))
    res = await result(ts_stack, req)
    assert res.stage is BkashStage.EXPIRED
    assert await ts_stack.sandbox.ledger(payment_id=url.payment_id) == []


async def test_decision_just_before_the_hold_deadline_is_still_captured(ts_env, ts_stack):
    req, url = await pay(ts_stack)
    await ts_stack.customer.approve(url.bkash_url)
    await wait_for_stage(ts_stack, req, BkashStage.AUTHORIZED)
    await ts_env.sleep(timedelta(hours=23, minutes=55))
    await report_service_delivered(ts_stack.client, req.invoice_number)
    assert (await result(ts_stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await ts_stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]
