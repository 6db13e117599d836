"""Found by the chaos run at 1,000 payments: the customer's return is sent again (the "confirming"
page reloads itself, or the endpoint restarted mid-return) after the payment was replaced because
its execute was lost before bKash applied it. The endpoint sends the browser to the new payment's
bKash page, so the customer can approve it, instead of a pending page that leads nowhere."""

from __future__ import annotations

from merchant_client import report_service_delivered
from tests.support.bkash import pay, result, state, wait_for_stage
from contracts.bkash import BkashStage


async def test_a_return_of_the_replaced_payment_leads_to_the_new_bkash_page(stack):
    req, url = await pay(stack)
    await stack.sandbox.add_fault("execute", "drop_connection", commit=False,
                                  match={"paymentID": url.payment_id})
    journey = await stack.customer.approve(url.bkash_url)
    s = await state(stack, req)
    assert s.payment_id != url.payment_id and s.stage is BkashStage.AWAITING_APPROVAL
    assert journey.callback_url_hit and url.payment_id in journey.callback_url_hit
    again = await stack.customer.http.get(journey.callback_url_hit, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == s.bkash_url
    await stack.customer.approve(s.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
