"""bKash Auth & Capture from merchant code: start, the service decision, inspection, and the
customer's return (the endpoint's call)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from contracts.bkash import (
    WORKFLOW,
    ApprovalUrl,
    BkashOp,
    BkashPaymentRequest,
    BkashPaymentResult,
    BkashPaymentState,
    BkashStage,
    BkashView,
    BrowserReturn,
    ReturnOutcome,
    ServiceDecisionAck,
    ServiceOutcome,
    workflow_id_for_invoice,
)
from contracts.common import DEFAULT_ACCOUNT, TASK_QUEUE, Provider
from contracts.money import format_bdt
from merchant_client import calls


async def start_payment(client: Client, req: BkashPaymentRequest, *,
                        task_queue: str = TASK_QUEUE) -> ApprovalUrl:
    """Start (or find the running) bKash payment for the invoice; returns where to send the
    customer. The same invoice with a different amount is refused, never confused with it."""
    answer: ApprovalUrl = await calls.start_with_update(
        client, WORKFLOW, req, workflow_id=req.workflow_id, update=BkashOp.APPROVAL_URL,
        result_type=ApprovalUrl,
        search=calls.attributes(PAYMENT_PROVIDER=Provider.BKASH,
                                MERCHANT_INVOICE=req.invoice_number,
                                PAYMENT_STAGE=BkashStage.CREATING,
                                PAYMENT_ACCOUNT=req.account_id),
        summary=f"bKash Auth & Capture · {format_bdt(req.amount_poisha)} BDT · invoice "
                f"{req.invoice_number}" + _in_account(req.account_id),
        task_queue=task_queue, what=f"invoice {req.invoice_number}", finished_as=_finished_stage,
        amount_poisha=req.amount_poisha)
    return answer


async def _finished_stage(client: Client, workflow_id: str) -> str:
    result = await calls.result(client, workflow_id, result_type=BkashPaymentResult,
                                what=f"bKash payment {workflow_id}")
    return result.stage.value


def _in_account(account_id: str) -> str:
    return "" if account_id == DEFAULT_ACCOUNT else f" · account {account_id}"


def _workflow_id(invoice_number: str, account_id: str) -> str:
    return workflow_id_for_invoice(invoice_number, calls.workflow_account(account_id))


async def _decide(client: Client, invoice_number: str, name: BkashOp, note: str,
                  account_id: str) -> ServiceDecisionAck:
    return await calls.update(client, _workflow_id(invoice_number, account_id), name,
                              ServiceOutcome(note=note), update_id=name.value,
                              result_type=ServiceDecisionAck,
                              what=f"bKash payment for invoice {invoice_number}"
                              + _in_account(account_id))


async def report_service_delivered(client: Client, invoice_number: str, note: str = "", *,
                                   account_id: str = DEFAULT_ACCOUNT) -> ServiceDecisionAck:
    """The service was delivered: capture the authorization."""
    return await _decide(client, invoice_number, BkashOp.SERVICE_DELIVERED, note, account_id)


async def report_service_failed(client: Client, invoice_number: str, reason: str = "", *,
                                account_id: str = DEFAULT_ACCOUNT) -> ServiceDecisionAck:
    """The service cannot be delivered: void the authorization."""
    return await _decide(client, invoice_number, BkashOp.SERVICE_FAILED, reason, account_id)


async def payment_state(client: Client, invoice_number: str, *,
                        account_id: str = DEFAULT_ACCOUNT) -> BkashPaymentState:
    return await calls.query(client, _workflow_id(invoice_number, account_id), BkashOp.STATE,
                             result_type=BkashPaymentState,
                             what=f"bKash payment for invoice {invoice_number}"
                             + _in_account(account_id))


async def payment_result(client: Client, invoice_number: str, *,
                         account_id: str = DEFAULT_ACCOUNT) -> BkashPaymentResult:
    """Wait for the payment to end; its final stage and amounts."""
    return await calls.result(client, _workflow_id(invoice_number, account_id),
                              result_type=BkashPaymentResult,
                              what=f"bKash payment for invoice {invoice_number}"
                              + _in_account(account_id))


async def send_customer_return(client: Client, workflow_id: str, ret: BrowserReturn, *,
                               update_id: str) -> ReturnOutcome:
    """The customer's browser came back from bKash's page (the endpoint's call). Raises the
    workflow's refusal or Temporal's error as is: the endpoint decides what the browser sees."""
    return await client.get_workflow_handle(workflow_id).execute_update(
        BkashOp.CUSTOMER_RETURNED, ret, id=update_id, result_type=ReturnOutcome)


async def bkash_view(client: Client, workflow_id: str) -> BkashView | None:
    """Stage, amount and paymentIDs of a running or finished bKash payment; None when there is no
    bKash payment with this workflow id."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise
    if desc.workflow_type != WORKFLOW:
        return None  # its state would not even decode as a bKash payment's
    if desc.close_time is None or desc.status != WorkflowExecutionStatus.COMPLETED:
        # Running, or ended without a result (terminated, failed, timed out: an operator's hand,
        # not a payment outcome). Its last state is what there is; a closed workflow answers a
        # query by replaying its history.
        state = await handle.query(BkashOp.STATE, result_type=BkashPaymentState)
        return BkashView(stage=state.stage, amount_poisha=state.amount_poisha,
                         payment_id=state.payment_id,
                         previous_payment_ids=state.previous_payment_ids,
                         bkash_url=state.bkash_url if desc.close_time is None else None)
    result = await client.get_workflow_handle(workflow_id, result_type=BkashPaymentResult).result()
    return BkashView(stage=result.stage, amount_poisha=result.amount_poisha,
                     payment_id=result.payment_id)
