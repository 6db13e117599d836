"""The amount bKash reports in execute and capture is checked against the invoice: a different one
is a clear, recorded error in the payment's state (issue 8 §4). Activities are stand-ins here (a
unit test of the workflow): real bKash never changes an amount, so no sandbox can be made to."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.worker import Worker

from contracts.bkash import (
    BkashActivity,
    BkashPaymentRequest,
    BkashStage,
    BrowserReturn,
    BrowserReturnStatus,
    CreatedPaymentInfo,
    CreatePaymentInput,
    PaymentRef,
    ProviderPaymentStatus,
)
from merchant_client import payment_result, payment_state, report_service_delivered, \
    send_customer_return, start_payment
from workflows.bkash import BkashAuthCapture


class WrongAmountBkash:
    """bKash stand-in that authorizes and captures 100× the invoice's amount."""

    def __init__(self) -> None:
        self.amount = 0

    @activity.defn(name=BkashActivity.CREATE_PAYMENT)
    async def create(self, inp: CreatePaymentInput) -> CreatedPaymentInfo:
        self.amount = inp.amount_poisha * 100
        return CreatedPaymentInfo(payment_id="TR0011wrong", bkash_url="https://bkash.example/pay")

    @activity.defn(name=BkashActivity.EXECUTE_PAYMENT)
    async def execute(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return ProviderPaymentStatus(payment_id=ref.payment_id, transaction_status="Authorized",
                                     trx_id="TRX1", amount_poisha=self.amount)

    @activity.defn(name=BkashActivity.CAPTURE_PAYMENT)
    async def capture(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return ProviderPaymentStatus(payment_id=ref.payment_id, transaction_status="Completed",
                                     trx_id="TRX1", amount_poisha=self.amount)


async def test_an_amount_bkash_reports_differently_is_recorded_as_an_error(ts_env):
    fake = WrongAmountBkash()
    queue = f"amount-{uuid.uuid4().hex[:6]}"
    req = BkashPaymentRequest(invoice_number=f"AMT-{uuid.uuid4().hex[:6]}", amount_poisha=50000,
                              callback_base_url="https://shop.example")
    async with Worker(ts_env.client, task_queue=queue, workflows=[BkashAuthCapture],
                      activities=[fake.create, fake.execute, fake.capture]):
        url = await start_payment(ts_env.client, req, task_queue=queue)
        await send_customer_return(
            ts_env.client, req.workflow_id,
            BrowserReturn(payment_id=url.payment_id, status=BrowserReturnStatus.SUCCESS),
            update_id="return-1")
        state = await payment_state(ts_env.client, req.invoice_number)
        assert state.stage is BkashStage.AUTHORIZED
        assert state.last_error and "reported 50000.00 BDT" in state.last_error
        assert "invoice is 500.00 BDT" in state.last_error
        await report_service_delivered(ts_env.client, req.invoice_number)
        res = await payment_result(ts_env.client, req.invoice_number)
        final = await payment_state(ts_env.client, req.invoice_number)  # replayed by the worker
    assert res.stage is BkashStage.CAPTURED
    errors = [e.event for e in final.timeline if e.event.startswith("error:")]
    assert len(errors) == 2 and all("50000.00 BDT" in e for e in errors)  # execute and capture
