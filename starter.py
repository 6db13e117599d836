"""Merchant-side CLI and the example code a merchant copies.

    python starter.py pay --invoice INV-1001 --amount 500.00     # prints the bkashURL
    python starter.py deliver INV-1001                           # service delivered → capture
    python starter.py fail INV-1001 --reason "room unavailable"  # service failed → void
    python starter.py status INV-1001
    python starter.py list --stage AUTHORIZED

    python starter.py gate-pay --payment-id P-1 --amount 1000.00 --customer-id C-1 \
        --email c@example.com --ip 203.0.113.7 --first-name Rahim --last-name Uddin
    python starter.py txn P-1 8KJ1056KR3                         # the customer's bKash TrxID
    python starter.py gate-status P-1
    python starter.py page-url --payment-id P-2 --amount 500.00 --customer-id C-1 ...

The functions below are the API. bKash: start_payment, report_service_delivered,
report_service_failed, payment_state, list_payments. Monetix: start_gate_purchase,
submit_transaction_id, provide_clarification, purchase_state, start_payment_page_purchase.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys

from pydantic import ValidationError
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from providers.money import format_bdt, parse_bdt
from workflows import search_attributes as sa
from workflows.bkash import BkashAuthCapture
from workflows.monetix import MonetixGatePurchase, PaymentPagePurchase
from workflows.monetix_models import (
    TRANSACTION_ID,
    MonetixPurchaseRequest,
    MonetixPurchaseState,
    PaymentInstructions,
    PaymentPagePurchaseRequest,
    TransactionIdSubmission,
    workflow_id_for_payment,
)
from workflows.bkash_models import (
    TASK_QUEUE,
    ApprovalUrl,
    BkashPaymentRequest,
    BkashPaymentResult,
    BkashPaymentState,
    BkashStage,
    ServiceDecisionAck,
    ServiceOutcome,
    workflow_id_for_invoice,
)


class PaymentError(Exception):
    """A merchant action that could not be taken; the message says why and what to do."""


async def _start_with_update(client: Client, run, request, workflow_id: str, update,
                             attributes: list[SearchAttributePair], summary: str,
                             task_queue: str, already: str):
    """Update-with-start, idempotent by business key: a running payment is returned as it is
    (USE_EXISTING); a finished one cannot be started again (REJECT_DUPLICATE)."""
    op = WithStartWorkflowOperation(
        run, request, id=workflow_id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(attributes), static_summary=summary)
    try:
        return await client.execute_update_with_start_workflow(update, start_workflow_operation=op)
    except WorkflowAlreadyStartedError:
        result = await client.get_workflow_handle_for(run, workflow_id).result()
        outcome = getattr(result, "stage", None) or getattr(result, "outcome", None)
        raise PaymentError(f"{already} was already paid and ended {outcome.value}; "
                           "use a new one") from None


async def start_payment(client: Client, req: BkashPaymentRequest, *,
                        task_queue: str = TASK_QUEUE) -> ApprovalUrl:
    """Start (or find the running) bKash payment for the invoice; returns where to send the customer."""
    return await _start_with_update(
        client, BkashAuthCapture.run, req, req.workflow_id, BkashAuthCapture.approval_url,
        [SearchAttributePair(sa.PAYMENT_PROVIDER, "bkash"),
         SearchAttributePair(sa.MERCHANT_INVOICE, req.invoice_number),
         SearchAttributePair(sa.PAYMENT_STAGE, BkashStage.CREATING.value)],
        f"bKash Auth & Capture · {format_bdt(req.amount_poisha)} BDT · invoice {req.invoice_number}",
        task_queue, f"invoice {req.invoice_number}")


async def start_gate_purchase(client: Client, req: MonetixPurchaseRequest, *,
                              task_queue: str = TASK_QUEUE) -> PaymentInstructions:
    """Start (or find) a Monetix Gate purchase; returns the payment instructions to show the
    customer (display_data), or the fields Monetix asks for first (clarification_fields)."""
    return await _start_with_update(
        client, MonetixGatePurchase.run, req, req.workflow_id,
        MonetixGatePurchase.payment_instructions,
        [SearchAttributePair(sa.PAYMENT_PROVIDER, "monetix"),
         SearchAttributePair(sa.MERCHANT_INVOICE, req.sale.payment_id),
         SearchAttributePair(sa.PAYMENT_STAGE, "SALE")],
        f"Monetix bKash (Gate) · {format_bdt(req.sale.amount)} BDT · payment {req.sale.payment_id}",
        task_queue, f"Monetix payment_id {req.sale.payment_id}")


async def start_payment_page_purchase(client: Client, req: PaymentPagePurchaseRequest, *,
                                      task_queue: str = TASK_QUEUE) -> PaymentInstructions:
    """Start (or find) a Monetix Payment Page purchase; returns the signed Payment Page URL."""
    return await _start_with_update(
        client, PaymentPagePurchase.run, req, req.workflow_id, PaymentPagePurchase.payment_page,
        [SearchAttributePair(sa.PAYMENT_PROVIDER, "monetix"),
         SearchAttributePair(sa.MERCHANT_INVOICE, req.params.payment_id),
         SearchAttributePair(sa.PAYMENT_STAGE, "SALE")],
        f"Monetix bKash (Payment Page) · {format_bdt(req.params.amount)} BDT · "
        f"payment {req.params.payment_id}", task_queue,
        f"Monetix payment_id {req.params.payment_id}")


async def _update(client: Client, workflow_id: str, update, arg, update_id: str, what: str):
    handle = client.get_workflow_handle(workflow_id)
    try:
        # The update id makes a retried call (network blip, double click) harmless.
        return await handle.execute_update(update, arg, id=update_id)
    except WorkflowUpdateFailedError as err:
        raise PaymentError(str(err.cause.message if err.cause else err)) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentError(f"no running {what}") from None
        raise


async def submit_transaction_id(client: Client, payment_id: str,
                                transaction_id: str) -> PaymentInstructions:
    """The customer typed the bKash transaction ID on the merchant's site."""
    typed = transaction_id.strip().upper()
    # The update id carries the ID so that a retried call is absorbed. Whatever the customer typed
    # that is no transaction ID still goes to the workflow, whose validator names the rule; its id
    # must then stay short, or Temporal's 1000-character id limit would answer instead.
    digest = hashlib.sha256(transaction_id.encode("utf-8", "replace")).hexdigest()
    update_id = f"transaction-id-{typed}" if TRANSACTION_ID.match(typed) else f"transaction-id-invalid-{digest}"
    return await _update(client, workflow_id_for_payment(payment_id),
                         MonetixGatePurchase.submit_transaction_id,
                         TransactionIdSubmission(transaction_id=transaction_id), update_id,
                         f"Monetix purchase {payment_id}")


async def provide_clarification(client: Client, payment_id: str,
                                fields: dict) -> PaymentInstructions:
    """Answer Monetix's clarification_fields, e.g. {"account": {"number": "01712345678"}}."""
    from providers.monetix import clarification_problems
    from workflows.monetix_models import ClarificationAnswer

    # The workflow takes one answer per request and sends it once: a typo found only by the send
    # could not be corrected any more, so the merchant hears about it here, before anything is sent.
    problems = clarification_problems(fields)
    if problems:
        raise PaymentError(f"clarification for Monetix purchase {payment_id} not sent: "
                           + "; ".join(problems))

    return await _update(client, workflow_id_for_payment(payment_id),
                         MonetixGatePurchase.provide_clarification,
                         ClarificationAnswer(fields=fields), "clarification",
                         f"Monetix purchase {payment_id}")


async def purchase_state(client: Client, payment_id: str) -> MonetixPurchaseState:
    handle = client.get_workflow_handle(workflow_id_for_payment(payment_id))
    try:
        return await handle.query(MonetixGatePurchase.state)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentError(f"no Monetix purchase {payment_id}") from None
        raise


async def _decide(client: Client, invoice_number: str, update, note: str) -> ServiceDecisionAck:
    return await _update(client, workflow_id_for_invoice(invoice_number), update,
                         ServiceOutcome(note=note), update.__name__,
                         f"bKash payment for invoice {invoice_number}")


async def report_service_delivered(client: Client, invoice_number: str,
                                   note: str = "") -> ServiceDecisionAck:
    return await _decide(client, invoice_number, BkashAuthCapture.service_delivered, note)


async def report_service_failed(client: Client, invoice_number: str,
                                reason: str = "") -> ServiceDecisionAck:
    return await _decide(client, invoice_number, BkashAuthCapture.service_failed, reason)


async def payment_state(client: Client, invoice_number: str) -> BkashPaymentState:
    handle = client.get_workflow_handle(workflow_id_for_invoice(invoice_number))
    try:
        return await handle.query(BkashAuthCapture.state)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentError(f"no bKash payment for invoice {invoice_number}") from None
        raise


async def payment_result(client: Client, invoice_number: str) -> BkashPaymentResult:
    return await client.get_workflow_handle_for(
        BkashAuthCapture.run, workflow_id_for_invoice(invoice_number)).result()


async def list_payments(client: Client, stage: str | None = None,
                        provider: str = "bkash") -> list[dict]:
    """Payments as the Web UI lists them, by the project's search attributes."""
    for name, value in (("provider", provider), ("stage", stage or "")):
        if not value.replace("_", "").isalnum() and value:
            raise PaymentError(f"{name} {value!r} must be letters, digits or '_'")
    query = f'PaymentProvider="{provider}"'
    if stage:
        query += f' AND PaymentStage="{stage}"'
    rows = []
    async for wf in client.list_workflows(query):
        attrs = wf.typed_search_attributes
        rows.append({"workflow_id": wf.id,
                     "invoice": attrs.get(sa.MERCHANT_INVOICE),
                     "stage": attrs.get(sa.PAYMENT_STAGE),
                     "payment_id": attrs.get(sa.PROVIDER_PAYMENT_ID) or None,
                     "running": wf.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING})
    return rows


def _request_from_args(args, settings) -> BkashPaymentRequest:
    try:
        amount = parse_bdt(args.amount)
    except ValueError as exc:
        raise PaymentError(f"--amount: {exc}") from None
    try:
        return BkashPaymentRequest.model_validate(
            {"invoice_number": args.invoice, "amount_poisha": amount,
             "callback_base_url": settings.callback_base_url},
            context={"max_amount_poisha": settings.max_amount_poisha})
    except ValidationError as exc:
        raise PaymentError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                     for e in exc.errors(include_input=False))) from None


def _monetix_request(args, settings, *, gate: bool):
    try:
        amount = parse_bdt(args.amount)
    except ValueError as exc:
        raise PaymentError(f"--amount: {exc}") from None
    try:
        if gate:
            return MonetixPurchaseRequest.model_validate({
                "sale": {"payment_id": args.payment_id, "amount": amount,
                         "account_number": args.account,
                         "customer": {"id": args.customer_id, "ip_address": args.ip,
                                      "first_name": args.first_name,
                                      "last_name": args.last_name, "email": args.email}},
                "callback_base_url": settings.callback_base_url})
        return PaymentPagePurchaseRequest.model_validate({
            "params": {"payment_id": args.payment_id, "amount": amount,
                       "customer_id": args.customer_id, "first_name": args.first_name,
                       "last_name": args.last_name, "email": args.email,
                       "account_number": args.account},
            "callback_base_url": settings.callback_base_url})
    except ValidationError as exc:
        raise PaymentError("; ".join(e["msg"] for e in exc.errors(include_input=False))) from None


async def _main(argv: list[str]) -> int:
    from config import connect_temporal, load_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pay = sub.add_parser("pay", help="start a payment and print the bkashURL")
    pay.add_argument("--invoice", required=True)
    pay.add_argument("--amount", required=True, help="BDT, e.g. 500.00")
    for name in ("deliver", "fail", "status"):
        p = sub.add_parser(name)
        p.add_argument("invoice")
        if name == "fail":
            p.add_argument("--reason", default="")
    lst = sub.add_parser("list", help="list payments, optionally by stage")
    lst.add_argument("--stage", help="e.g. AUTHORIZED, CAPTURED, AWAITING_TRANSACTION_ID")
    lst.add_argument("--provider", default="bkash", choices=["bkash", "monetix"])
    for name, text in (("gate-pay", "start a Monetix Gate purchase, print the instructions"),
                       ("page-url", "start a Monetix Payment Page purchase, print its URL")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--payment-id", required=True)
        p.add_argument("--amount", required=True, help="BDT, a multiple of 10, e.g. 1000.00")
        p.add_argument("--customer-id", required=True)
        p.add_argument("--email", required=True)
        p.add_argument("--first-name", required=True)
        p.add_argument("--last-name", required=True)
        p.add_argument("--account", help="the customer's bKash account number (optional)")
        if name == "gate-pay":
            p.add_argument("--ip", required=True, help="the customer's IP address")
    txn = sub.add_parser("txn", help="submit the customer's bKash transaction ID")
    txn.add_argument("payment_id")
    txn.add_argument("transaction_id")
    gst = sub.add_parser("gate-status", help="show a Monetix purchase")
    gst.add_argument("payment_id")
    args = parser.parse_args(argv)

    settings = load_settings()
    client = await connect_temporal()
    try:
        if args.command == "pay":
            url = await start_payment(client, _request_from_args(args, settings),
                                      task_queue=settings.task_queue)
            print(json.dumps(url.model_dump(mode="json"), indent=2))
        elif args.command == "deliver":
            print((await report_service_delivered(client, args.invoice)).model_dump_json())
        elif args.command == "fail":
            print((await report_service_failed(client, args.invoice, args.reason)).model_dump_json())
        elif args.command == "status":
            print((await payment_state(client, args.invoice)).model_dump_json(indent=2))
        elif args.command == "list":
            for row in await list_payments(client, args.stage, args.provider):
                print(json.dumps(row))
        elif args.command == "gate-pay":
            req = _monetix_request(args, settings, gate=True)
            print((await start_gate_purchase(client, req, task_queue=settings.task_queue))
                  .model_dump_json(indent=2))
        elif args.command == "page-url":
            req = _monetix_request(args, settings, gate=False)
            page = await start_payment_page_purchase(client, req, task_queue=settings.task_queue)
            print(page.payment_page_url)
        elif args.command == "txn":
            print((await submit_transaction_id(client, args.payment_id, args.transaction_id))
                  .model_dump_json(indent=2))
        elif args.command == "gate-status":
            print((await purchase_state(client, args.payment_id)).model_dump_json(indent=2))
    except PaymentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
