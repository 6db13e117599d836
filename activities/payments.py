"""Reading a payment's outcome from Temporal itself, for the refunds workflow: what was captured
(bKash) or paid (Monetix), and when. The payment's own workflow result is the source of truth; the
merchant's request is never trusted for the amount."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from contracts.bkash import WORKFLOW as BKASH_WORKFLOW
from contracts.bkash import BkashPaymentResult, BkashStage
from contracts.common import Provider
from contracts.monetix import GATE_WORKFLOW, PAGE_WORKFLOW, MonetixPurchaseResult, MonetixStage
from contracts.refunds import RefundablePayment, RefundActivity, RefundsInput


class PaymentRecords:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=RefundActivity.LOAD_PAYMENT)
    async def load_refundable_payment(self, inp: RefundsInput) -> RefundablePayment:
        workflow_id = inp.payment_workflow_id
        handle = self._client.get_workflow_handle(workflow_id)

        def no(why: str) -> RefundablePayment:
            return RefundablePayment(provider=inp.provider, payment_workflow_id=workflow_id,
                                     refundable=False, why_not=why)

        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return no(f"there is no {inp.provider.value} payment {inp.payment_key}")
            raise
        if desc.status == WorkflowExecutionStatus.RUNNING:
            return no(f"payment {inp.payment_key} is still running: refund it once it is "
                      "captured (bKash) or successful (Monetix)")
        if desc.status != WorkflowExecutionStatus.COMPLETED:
            return no(f"payment {inp.payment_key} ended {desc.status.name if desc.status else '?'}"
                      " without a result: reconcile it before refunding")
        if inp.provider is Provider.BKASH:
            if desc.workflow_type != BKASH_WORKFLOW:
                return no(f"{workflow_id} is not a bKash payment")
            res = await self._client.get_workflow_handle(handle.id, result_type=BkashPaymentResult).result()
            if res.stage is not BkashStage.CAPTURED or not res.trx_id or not res.payment_id:
                return no(f"payment {inp.payment_key} ended {res.stage.value}: only a CAPTURED "
                          "payment can be refunded")
            return RefundablePayment(provider=inp.provider, payment_workflow_id=workflow_id,
                                     refundable=True, captured_poisha=res.amount_poisha,
                                     payment_id=res.payment_id, trx_id=res.trx_id,
                                     settled_at=desc.close_time)
        if desc.workflow_type not in (GATE_WORKFLOW, PAGE_WORKFLOW):
            return no(f"{workflow_id} is not a Monetix purchase")
        res = await self._client.get_workflow_handle(handle.id, result_type=MonetixPurchaseResult).result()
        if res.outcome is not MonetixStage.SUCCESS or not res.paid_poisha:
            return no(f"purchase {inp.payment_key} ended {res.outcome.value}: only a SUCCESS "
                      "purchase can be refunded")
        # What was *paid* is what can be refunded: the customer may pay another amount (§4.5).
        return RefundablePayment(provider=inp.provider, payment_workflow_id=workflow_id,
                                 refundable=True, captured_poisha=res.paid_poisha,
                                 payment_id=res.payment_id, settled_at=desc.close_time)
