"""Merchant-side helpers shared by the Monetix tests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from merchant_client import start_gate_purchase, start_payment_page_purchase
from tests.support.bkash import record_history
import merchant_client
from contracts.monetix import (
    MonetixPurchaseRequest,
    MonetixPurchaseState,
    MonetixStage,
    PaymentPagePurchaseRequest,
)

CUSTOMER = {"id": "cust-42", "ip_address": "203.0.113.7", "first_name": "Rahim",
            "last_name": "Uddin", "email": "rahim@example.com"}


def new_payment_id() -> str:
    return f"mx-{uuid.uuid4().hex[:12]}"


def gate_request(stack, amount: int = 100000, account: str | None = "01712345678",
                 **kw) -> MonetixPurchaseRequest:
    kw.setdefault("provider_timeout", timedelta(seconds=3))
    sale = {"payment_id": kw.pop("payment_id", None) or new_payment_id(), "amount_poisha": amount,
            "customer": CUSTOMER, "account_number": account}
    return MonetixPurchaseRequest(sale=sale, callback_base_url=stack.endpoint_url, **kw)


async def start_gate(stack, **kw):
    req = gate_request(stack, **kw)
    return req, await start_gate_purchase(stack.client, req, task_queue=stack.settings.task_queue)


async def start_page(stack, amount: int = 50000, **kw):
    params = {"payment_id": new_payment_id(), "amount_poisha": amount, "customer_id": CUSTOMER["id"],
              "first_name": "Rahim", "last_name": "Uddin", "email": "rahim@example.com",
              "account_number": "01712345678"}
    kw.setdefault("provider_timeout", timedelta(seconds=3))
    req = PaymentPagePurchaseRequest(params=params, callback_base_url=stack.endpoint_url, **kw)
    return req, await start_payment_page_purchase(stack.client, req,
                                                  task_queue=stack.settings.task_queue)


async def purchase_state(stack, req) -> MonetixPurchaseState:
    return await merchant_client.purchase_state(stack.client, req.payment_id)


async def wait_for(stack, req, stage: MonetixStage, timeout: float = 30) -> MonetixPurchaseState:
    async def poll():
        while True:
            s = await purchase_state(stack, req)
            if s.stage is stage:
                return s
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(poll(), timeout)


async def purchase_result(stack, req):
    res = await merchant_client.purchase_result(stack.client, req.payment_id)
    await record_history(stack.client.get_workflow_handle(req.workflow_id), "monetix")
    return res
