"""One payment, driven end to end, on each of the three paths.

The workflow path drives a customer exactly as ``demo.py`` does: ``start_payment`` (update-with-
start), the sandbox's hosted bKash page over HTTP (wallet, OTP, PIN) and the browser's return to the
merchant endpoint, then ``report_service_delivered``; for Monetix ``start_gate_purchase``, the
customer paying in bKash, ``submit_transaction_id``, and the sandbox's signed callbacks reaching the
endpoint. Each driver returns the whole payment's latency and the customer-visible step's:

- bKash: browser return → the merchant's page shows the payment authorized;
- Monetix: transaction ID submitted → final result known to the merchant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.direct import DirectReceiver
from bench.floor import FloorAuthCapture, FloorGatePurchase, FloorRequest
from providers.bkash import BkashClient
from providers.monetix import MonetixGateClient
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer
from merchant_client import (
    payment_result,
    purchase_result,
    report_service_delivered,
    report_service_failed,
    start_gate_purchase,
    start_payment,
    submit_transaction_id,
)
from merchant_client.calls import attributes
from contracts.bkash import BkashPaymentRequest, BkashStage
from contracts.monetix import MonetixPurchaseRequest, MonetixStage

KINDS = ("bkash", "monetix")
PATHS = ("workflow", "floor", "direct")
BKASH_AMOUNT = 50000     # 500.00 BDT
MONETIX_AMOUNT = 100000  # 1000.00 BDT
CUSTOMER = {"id": "cust-42", "ip_address": "203.0.113.7", "first_name": "Rahim",
            "last_name": "Uddin", "email": "rahim@example.com"}
ACCOUNT = "01712345678"


@dataclass
class Sample:
    total: float            # seconds, the whole payment
    step: float             # seconds, the customer-visible step
    workflow_id: str | None
    ok: bool
    detail: str = ""


class TimedCustomer(BkashCustomer):
    """The sandbox's scripted bKash customer, timing the browser's return to the merchant: from the
    redirect off bKash's page until the merchant's result page has loaded."""

    async def _back_to_merchant(self, payment_id, redirect):
        started = time.perf_counter()
        journey = await super()._back_to_merchant(payment_id, redirect)
        journey.return_seconds = time.perf_counter() - started
        return journey


@dataclass
class Ctx:
    client: Client
    task_queue: str
    floor_task_queue: str
    endpoint_url: str
    direct_url: str
    customer: TimedCustomer
    monetix_customer: MonetixBkashCustomer
    bkash: BkashClient
    monetix: MonetixGateClient
    receiver: DirectReceiver
    http: httpx.AsyncClient
    # The sandboxes' admin APIs (faults, ledgers), for the refund paths (bench/refund_paths.py).
    bkash_admin: BkashSandboxAdmin | None = None
    monetix_admin: MonetixSandboxAdmin | None = None


def _authorized(journey) -> bool:
    return "data-stage='AUTHORIZED'" in journey.final_text


# -- bKash Auth & Capture: approved → delivered → captured -------------------------------------

async def bkash_workflow(ctx: Ctx, key: str, *, wallet: str | None = None,
                         decision: str = "delivered", amount_poisha: int = BKASH_AMOUNT) -> Sample:
    req = BkashPaymentRequest(invoice_number=f"BENCH-{key}", amount_poisha=amount_poisha,
                              callback_base_url=ctx.endpoint_url)
    started = time.perf_counter()
    url = await start_payment(ctx.client, req, task_queue=ctx.task_queue)
    journey = await (ctx.customer.approve(url.bkash_url, wallet=wallet) if wallet
                     else ctx.customer.approve(url.bkash_url))
    if _authorized(journey):
        if decision == "delivered":
            await report_service_delivered(ctx.client, req.invoice_number)
        else:
            await report_service_failed(ctx.client, req.invoice_number, "bench")
    result = await payment_result(ctx.client, req.invoice_number)
    total = time.perf_counter() - started
    return Sample(total, getattr(journey, "return_seconds", 0.0), req.workflow_id,
                  result.stage is BkashStage.CAPTURED, result.stage.value)


async def bkash_floor(ctx: Ctx, key: str) -> Sample:
    req = FloorRequest(key=key, amount_poisha=BKASH_AMOUNT)
    workflow_id = f"floor-bkash-{key}"
    op = WithStartWorkflowOperation(
        FloorAuthCapture.run, req, id=workflow_id, task_queue=ctx.floor_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=attributes(PAYMENT_PROVIDER="bench-floor", MERCHANT_INVOICE=key,
                                     PAYMENT_STAGE="CREATING"),
        static_summary=f"floor: bKash Auth & Capture · {key}")
    started = time.perf_counter()
    await ctx.client.execute_update_with_start_workflow(FloorAuthCapture.approval_url,
                                                        start_workflow_operation=op)
    handle = await op.workflow_handle()
    returned = time.perf_counter()
    await handle.execute_update(FloorAuthCapture.customer_returned, id=f"return-{key}")
    step = time.perf_counter() - returned
    await handle.execute_update(FloorAuthCapture.service_delivered, id="service_delivered")
    result = await handle.result()
    return Sample(time.perf_counter() - started, step, workflow_id, result.stage == "CAPTURED",
                  result.stage)


async def bkash_direct(ctx: Ctx, key: str) -> Sample:
    invoice = f"DIRECT-{key}"
    started = time.perf_counter()
    created = await ctx.bkash.create_payment(
        amount_poisha=BKASH_AMOUNT, invoice_number=invoice, payer_reference=f"inv-{invoice}",
        callback_url=f"{ctx.direct_url}/bkash/return/{invoice}")
    journey = await ctx.customer.approve(created.bkash_url)
    stage = "NOT AUTHORIZED"
    if _authorized(journey):
        stage = (await ctx.bkash.capture_payment(created.payment_id)).transaction_status
    return Sample(time.perf_counter() - started, getattr(journey, "return_seconds", 0.0), None,
                  stage == "Completed", stage)


# -- Monetix Gate: sale → instructions → the customer pays → transaction ID → success -----------

def _gate_request(ctx: Ctx, payment_id: str) -> MonetixPurchaseRequest:
    return MonetixPurchaseRequest(
        sale={"payment_id": payment_id, "amount_poisha": MONETIX_AMOUNT, "customer": CUSTOMER,
              "account_number": ACCOUNT}, callback_base_url=ctx.endpoint_url)


async def monetix_workflow(ctx: Ctx, key: str, *, pay_amount: int | None = None) -> Sample:
    req = _gate_request(ctx, f"BENCH-{key}")
    payment_id = req.sale.payment_id
    started = time.perf_counter()
    shown = await start_gate_purchase(ctx.client, req, task_queue=ctx.task_queue)
    if not shown.display_data:
        return Sample(time.perf_counter() - started, 0.0, req.workflow_id, False,
                      f"no instructions ({shown.stage.value})")
    trx = await ctx.monetix_customer.pay_in_bkash(payment_id, amount=pay_amount)
    submitted = time.perf_counter()
    await submit_transaction_id(ctx.client, payment_id, trx)
    result = await purchase_result(ctx.client, payment_id)
    ended = time.perf_counter()
    return Sample(ended - started, ended - submitted, req.workflow_id,
                  result.outcome is MonetixStage.SUCCESS, result.outcome.value)


async def monetix_floor(ctx: Ctx, key: str) -> Sample:
    req = FloorRequest(key=key, amount_poisha=MONETIX_AMOUNT)
    workflow_id = f"floor-monetix-{key}"
    op = WithStartWorkflowOperation(
        FloorGatePurchase.run, req, id=workflow_id, task_queue=ctx.floor_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=attributes(PAYMENT_PROVIDER="bench-floor", MERCHANT_INVOICE=key,
                                     PAYMENT_STAGE="SALE"),
        static_summary=f"floor: Monetix Gate · {key}")
    started = time.perf_counter()
    instructions = await ctx.client.start_update_with_start_workflow(
        FloorGatePurchase.payment_instructions, start_workflow_operation=op,
        wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    handle = await op.workflow_handle()
    # Monetix sends the instructions callback while it answers the sale: while the sale is in flight.
    await handle.execute_update(FloorGatePurchase.provider_callback, False, id="callback-instructions")
    await instructions.result()
    submitted = time.perf_counter()
    await handle.execute_update(FloorGatePurchase.submit_transaction_id, id="transaction-id")
    await handle.execute_update(FloorGatePurchase.provider_callback, True, id="callback-final")
    result = await handle.result()
    ended = time.perf_counter()
    return Sample(ended - started, ended - submitted, workflow_id, result.stage == "SUCCESS",
                  result.stage)


async def monetix_direct(ctx: Ctx, key: str) -> Sample:
    req = _gate_request(ctx, f"DIRECT-{key}")
    payment_id = req.sale.payment_id
    started = time.perf_counter()
    await ctx.monetix.sale(req.sale, f"{ctx.direct_url}/monetix/callback")
    await ctx.receiver.monetix_callback(payment_id, lambda s: bool(s.display_data))
    trx = await ctx.monetix_customer.pay_in_bkash(payment_id)
    submitted = time.perf_counter()
    await ctx.monetix.clarification(payment_id, {"transaction_id": trx})
    final = await ctx.receiver.monetix_callback(payment_id, lambda s: s.final)
    ended = time.perf_counter()
    return Sample(ended - started, ended - submitted, None, final.status == "success", final.status)


DRIVERS = {
    ("bkash", "workflow"): bkash_workflow, ("bkash", "floor"): bkash_floor,
    ("bkash", "direct"): bkash_direct,
    ("monetix", "workflow"): monetix_workflow, ("monetix", "floor"): monetix_floor,
    ("monetix", "direct"): monetix_direct,
}
