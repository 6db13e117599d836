"""Monetix bKash purchases from merchant code: Gate and Payment Page starts, the customer's
transaction ID, clarification answers, inspection, and verified callbacks (the endpoint's call)."""

from __future__ import annotations

import hashlib

from temporalio.client import Client

from contracts.common import DEFAULT_ACCOUNT, TASK_QUEUE, Provider
from contracts.money import format_bdt
from contracts.monetix import (
    GATE_WORKFLOW,
    PAGE_WORKFLOW,
    TRANSACTION_ID,
    CallbackAck,
    ClarificationAnswer,
    MonetixCallbackEvent,
    MonetixOp,
    MonetixPurchaseRequest,
    MonetixPurchaseResult,
    MonetixPurchaseState,
    MonetixStage,
    PaymentInstructions,
    PaymentPagePurchaseRequest,
    TransactionIdSubmission,
    workflow_id_for_payment,
)
from contracts.monetix_requests import check_payment_id, clarification_problems
from contracts.monetix_status import REFUND_OPERATION
from contracts.refunds import refunds_workflow_id
from merchant_client import calls
from merchant_client.connection import PaymentError


async def _start(client: Client, workflow: str, update: MonetixOp,
                 req: MonetixPurchaseRequest | PaymentPagePurchaseRequest, interface: str,
                 task_queue: str) -> PaymentInstructions:
    answer: PaymentInstructions = await calls.start_with_update(
        client, workflow, req, workflow_id=req.workflow_id, update=update,
        result_type=PaymentInstructions,
        search=calls.attributes(PAYMENT_PROVIDER=Provider.MONETIX, MERCHANT_INVOICE=req.payment_id,
                                PAYMENT_STAGE=MonetixStage.SALE, PAYMENT_ACCOUNT=req.account_id),
        summary=f"Monetix bKash ({interface}) · {format_bdt(req.amount_poisha)} BDT · payment "
                f"{req.payment_id}" + _in_account(req.account_id),
        task_queue=task_queue, what=f"Monetix payment_id {req.payment_id}",
        finished_as=_finished_outcome, amount_poisha=req.amount_poisha)
    return answer


async def _finished_outcome(client: Client, workflow_id: str) -> str:
    result = await calls.result(client, workflow_id, result_type=MonetixPurchaseResult,
                                what=f"Monetix purchase {workflow_id}")
    return result.outcome.value


async def start_gate_purchase(client: Client, req: MonetixPurchaseRequest, *,
                              task_queue: str = TASK_QUEUE) -> PaymentInstructions:
    """Start (or find) a Monetix Gate purchase; returns the payment instructions to show the
    customer (display_data), or the fields Monetix asks for first (clarification_fields)."""
    return await _start(client, GATE_WORKFLOW, MonetixOp.PAYMENT_INSTRUCTIONS, req, "Gate",
                        task_queue)


async def start_payment_page_purchase(client: Client, req: PaymentPagePurchaseRequest, *,
                                      task_queue: str = TASK_QUEUE) -> PaymentInstructions:
    """Start (or find) a Monetix Payment Page purchase; returns the signed Payment Page URL."""
    return await _start(client, PAGE_WORKFLOW, MonetixOp.PAYMENT_PAGE, req, "Payment Page",
                        task_queue)


def _in_account(account_id: str) -> str:
    return "" if account_id == DEFAULT_ACCOUNT else f" · account {account_id}"


def _workflow_id(payment_id: str, account_id: str = DEFAULT_ACCOUNT) -> str:
    try:
        return workflow_id_for_payment(check_payment_id(payment_id, "payment_id"),
                                       calls.workflow_account(account_id))
    except ValueError as exc:
        raise PaymentError(str(exc)) from None


async def submit_transaction_id(client: Client, payment_id: str, transaction_id: str, *,
                                account_id: str = DEFAULT_ACCOUNT) -> PaymentInstructions:
    """The customer typed the bKash transaction ID on the merchant's site."""
    typed = transaction_id.strip().upper()
    # The update id carries the ID so that a retried call is absorbed. Whatever the customer typed
    # that is no transaction ID still goes to the workflow, whose validator names the rule; its id
    # must then stay short, or Temporal's 1000-character id limit would answer instead.
    digest = hashlib.sha256(transaction_id.encode("utf-8", "replace")).hexdigest()
    update_id = (f"transaction-id-{typed}" if TRANSACTION_ID.match(typed)
                 else f"transaction-id-invalid-{digest}")
    return await calls.update(client, _workflow_id(payment_id, account_id),
                              MonetixOp.SUBMIT_TRANSACTION_ID,
                              TransactionIdSubmission(transaction_id=transaction_id),
                              update_id=update_id, result_type=PaymentInstructions,
                              what=f"Monetix purchase {payment_id}")


async def provide_clarification(client: Client, payment_id: str, fields: dict, *,
                                account_id: str = DEFAULT_ACCOUNT) -> PaymentInstructions:
    """Answer Monetix's clarification_fields, e.g. {"account": {"number": "01712345678"}}."""
    # The workflow takes one answer per request and sends it once: a typo found only by the send
    # could not be corrected any more, so the merchant hears about it here, before anything is sent.
    problems = clarification_problems(fields)
    if problems:
        raise PaymentError(f"clarification for Monetix purchase {payment_id} not sent: "
                           + "; ".join(problems))
    return await calls.update(client, _workflow_id(payment_id, account_id),
                              MonetixOp.PROVIDE_CLARIFICATION,
                              ClarificationAnswer(fields=fields), update_id="clarification",
                              result_type=PaymentInstructions,
                              what=f"Monetix purchase {payment_id}")


async def purchase_state(client: Client, payment_id: str, *,
                         account_id: str = DEFAULT_ACCOUNT) -> MonetixPurchaseState:
    return await calls.query(client, _workflow_id(payment_id, account_id), MonetixOp.STATE,
                             result_type=MonetixPurchaseState,
                             what=f"Monetix purchase {payment_id}")


async def purchase_result(client: Client, payment_id: str, *,
                          account_id: str = DEFAULT_ACCOUNT) -> MonetixPurchaseResult:
    """Wait for the purchase to end; its outcome and the amount paid."""
    return await calls.result(client, _workflow_id(payment_id, account_id),
                              result_type=MonetixPurchaseResult,
                              what=f"Monetix purchase {payment_id}")


def callback_workflow_id(event: MonetixCallbackEvent) -> str:
    """Where a verified callback goes: a refund's result (``operation.type = "refund"``) to the
    payment's refunds ledger, everything else to the purchase — of the callback's account."""
    account = event.account_id or DEFAULT_ACCOUNT
    op = event.status.operations[-1] if event.status.operations else None
    if op is not None and op.type == REFUND_OPERATION:
        return refunds_workflow_id(Provider.MONETIX, event.payment_id, account)
    return workflow_id_for_payment(event.payment_id, account)


async def send_provider_callback(client: Client, event: MonetixCallbackEvent) -> CallbackAck:
    """A verified Monetix callback (the endpoint's call); Temporal's errors are raised as they are,
    so the endpoint can answer 5xx and Monetix re-sends."""
    handle = client.get_workflow_handle(callback_workflow_id(event))
    return await handle.execute_update(MonetixOp.PROVIDER_CALLBACK, event, id=event.update_id,
                                       result_type=CallbackAck)
