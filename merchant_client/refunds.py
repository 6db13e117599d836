"""Refunds from merchant code: refund (part of) a captured bKash payment or a successful Monetix
purchase, and read a payment's refund ledger."""

from __future__ import annotations

import asyncio

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.bkash import WORKFLOW as BKASH_WORKFLOW
from contracts.bkash import BkashPaymentResult, BkashStage
from contracts.common import DEFAULT_ACCOUNT, TASK_QUEUE, Provider
from contracts.money import format_bdt
from contracts.monetix import MonetixPurchaseResult, MonetixStage
from contracts.refunds import (
    WORKFLOW,
    LedgerStage,
    RefundOp,
    RefundRecord,
    RefundRequest,
    RefundsInput,
    RefundsState,
    payment_workflow_id,
    refunds_workflow_id,
)
from merchant_client import calls
from merchant_client.connection import PaymentError, explain_rpc_error


async def _check_refundable(client: Client, provider: Provider, key: str, account_id: str) -> None:
    """Refuse locally, before any workflow or provider call, what cannot be refunded."""
    handle = client.get_workflow_handle(payment_workflow_id(provider, key, account_id))
    what = f"{provider.value} payment {key}" + (
        f" of account {account_id}" if account_id != DEFAULT_ACCOUNT else "")
    try:
        desc = await handle.describe()
    except RPCError as err:
        raise explain_rpc_error(err, what, client) or err from None
    if desc.status == WorkflowExecutionStatus.RUNNING:
        raise PaymentError(f"{what} is still running: refund it once it is "
                           + ("CAPTURED" if provider is Provider.BKASH else "SUCCESS"))
    if desc.status != WorkflowExecutionStatus.COMPLETED:
        raise PaymentError(f"{what} ended {desc.status.name if desc.status else '?'} without a "
                           "result: nothing to refund before it is reconciled")
    if provider is Provider.BKASH:
        if desc.workflow_type != BKASH_WORKFLOW:
            raise PaymentError(f"{handle.id} is not a bKash payment")
        res = await client.get_workflow_handle(handle.id, result_type=BkashPaymentResult).result()
        if res.stage is not BkashStage.CAPTURED:
            raise PaymentError(f"{what} ended {res.stage.value}: only a CAPTURED payment can be "
                               "refunded (nothing was taken from the customer)")
    else:
        res = await client.get_workflow_handle(handle.id, result_type=MonetixPurchaseResult).result()
        if res.outcome is not MonetixStage.SUCCESS:
            raise PaymentError(f"{what} ended {res.outcome.value}: only a SUCCESS purchase can be "
                               "refunded")


async def refund(client: Client, req: RefundRequest, *, task_queue: str = TASK_QUEUE,
                 callback_base_url: str | None = None, wait: bool = True,
                 ledger: RefundsInput | None = None) -> RefundRecord:
    """Refund ``req.amount_poisha`` of the payment; with ``wait`` (the default) returns the refund
    once it is final (SUCCEEDED or FAILED), else as soon as it is accepted (PENDING). The same
    ``refund_id`` with the same amount returns the same refund and moves no money again."""
    await _check_refundable(client, req.provider, req.payment_key, req.account_id)
    inp = ledger or RefundsInput(provider=req.provider, payment_key=req.payment_key,
                                 callback_base_url=callback_base_url, account_id=req.account_id)
    if inp.account_id != req.account_id:
        raise PaymentError(f"refund {req.refund_id}: the ledger settings name account "
                           f"{inp.account_id}, the refund account {req.account_id}")
    op = WithStartWorkflowOperation(
        WORKFLOW, inp, id=req.workflow_id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=calls.attributes(PAYMENT_PROVIDER=req.provider,
                                           MERCHANT_INVOICE=req.payment_key,
                                           PAYMENT_STAGE=LedgerStage.LOADING,
                                           REFUNDED_POISHA=0, PAYMENT_ACCOUNT=req.account_id),
        static_summary=f"refunds of {req.provider.value} payment {req.payment_key}")
    try:
        record: RefundRecord = await client.execute_update_with_start_workflow(
            RefundOp.REQUEST_REFUND, req, start_workflow_operation=op,
            id=f"refund-{req.refund_id}-{req.amount_poisha}", result_type=RefundRecord)
    except WorkflowAlreadyStartedError:
        await calls._settle(op)
        return await _from_closed_ledger(client, req)
    except WorkflowUpdateFailedError as err:
        await calls._settle(op)
        raise PaymentError(f"refund {req.refund_id} of {format_bdt(req.amount_poisha)} BDT "
                           f"refused: {calls._cause(err)}") from None
    except RPCError as err:
        await calls._settle(op)
        raise explain_rpc_error(err, f"refunds of {req.payment_key}", client) or err from None
    except (asyncio.CancelledError, WorkflowUpdateRPCTimeoutOrCancelledError):
        calls.retrieve_later(op)
        raise
    if not wait or record.stage.is_final:
        return record
    try:
        return await calls.update(client, req.workflow_id, RefundOp.AWAIT_REFUND, req.refund_id,
                                  update_id=f"await-{req.refund_id}", result_type=RefundRecord,
                                  what=f"refunds of {req.payment_key}")
    except PaymentError:
        # The same request was accepted earlier (its answer above is that earlier PENDING one)
        # and the ledger has closed since, fully refunded: the refund's outcome is in its result.
        if (await client.get_workflow_handle(req.workflow_id).describe()).close_time is None:
            raise
        return await _from_closed_ledger(client, req)


async def _from_closed_ledger(client: Client, req: RefundRequest) -> RefundRecord:
    state = await calls.result(client, req.workflow_id, result_type=RefundsState,
                               what=f"refunds of {req.payment_key}")
    for record in state.refunds:
        if record.refund_id == req.refund_id:
            if record.amount_poisha != req.amount_poisha:
                raise PaymentError(f"refund id {req.refund_id} is already a refund of "
                                   f"{format_bdt(record.amount_poisha)} BDT: use a new refund id")
            return record
    raise PaymentError(f"refund {req.refund_id} refused: the refund ledger of {req.payment_key} "
                       f"is closed ({state.stage.value}, refunded "
                       f"{format_bdt(state.refunded_poisha)} of "
                       f"{format_bdt(state.captured_poisha)} BDT)")


async def refunds(client: Client, provider: Provider | str, payment_key: str, *,
                  account_id: str = DEFAULT_ACCOUNT) -> RefundsState:
    """A payment's refund ledger: captured, refunded, pending and refundable, and each refund."""
    workflow_id = refunds_workflow_id(provider, payment_key, calls.workflow_account(account_id))
    try:
        return await client.get_workflow_handle(workflow_id).query(
            RefundOp.STATE, result_type=RefundsState)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and "namespace" not in (err.message or ""):
            raise PaymentError(f"no refunds for {Provider(provider).value} payment "
                               f"{payment_key}") from None
        raise explain_rpc_error(err, f"refunds of {payment_key}", client) or err from None
