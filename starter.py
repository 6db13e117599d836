"""Merchant-side CLI and the example code a merchant copies.

    python starter.py pay --invoice INV-1001 --amount 500.00     # prints the bkashURL
    python starter.py deliver INV-1001                           # service delivered → capture
    python starter.py fail INV-1001 --reason "room unavailable"  # service failed → void
    python starter.py status INV-1001
    python starter.py list --stage AUTHORIZED

The functions below are the API: start_payment, report_service_delivered, report_service_failed,
payment_state, list_payments.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def start_payment(client: Client, req: BkashPaymentRequest, *,
                        task_queue: str = TASK_QUEUE) -> ApprovalUrl:
    """Start (or find the running) payment for the invoice and return where to send the customer.

    Idempotent by invoice: a second call while the payment runs returns the same payment
    (USE_EXISTING); a finished invoice cannot be paid again (REJECT_DUPLICATE).
    """
    op = WithStartWorkflowOperation(
        BkashAuthCapture.run, req, id=req.workflow_id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa.PAYMENT_PROVIDER, "bkash"),
            SearchAttributePair(sa.MERCHANT_INVOICE, req.invoice_number),
            SearchAttributePair(sa.PAYMENT_STAGE, BkashStage.CREATING.value),
        ]),
        static_summary=f"bKash Auth & Capture · {format_bdt(req.amount_poisha)} BDT · "
                       f"invoice {req.invoice_number}")
    try:
        return await client.execute_update_with_start_workflow(
            BkashAuthCapture.approval_url, start_workflow_operation=op)
    except WorkflowAlreadyStartedError:
        result = await client.get_workflow_handle_for(BkashAuthCapture.run, req.workflow_id).result()
        raise PaymentError(f"invoice {req.invoice_number} was already paid through bKash and "
                           f"ended {result.stage.value}; use a new invoice number") from None


async def _decide(client: Client, invoice_number: str, update, note: str) -> ServiceDecisionAck:
    handle = client.get_workflow_handle(workflow_id_for_invoice(invoice_number))
    try:
        # The update id makes a retried call (network blip, double click) harmless.
        return await handle.execute_update(update, ServiceOutcome(note=note),
                                           id=f"{update.__name__}")
    except WorkflowUpdateFailedError as err:
        raise PaymentError(str(err.cause.message if err.cause else err)) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise PaymentError(f"no running bKash payment for invoice {invoice_number}") from None
        raise


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


async def list_payments(client: Client, stage: str | None = None) -> list[dict]:
    query = 'PaymentProvider="bkash"'
    if stage:
        query += f' AND PaymentStage="{BkashStage(stage).value}"'
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
    lst.add_argument("--stage", choices=[s.value for s in BkashStage])
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
            for row in await list_payments(client, args.stage):
                print(json.dumps(row))
    except PaymentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
