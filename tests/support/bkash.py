"""Merchant-side helpers shared by the bKash tests."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import merchant_client
from merchant_client import start_payment
from contracts.bkash import (ApprovalUrl, BkashPaymentRequest, BkashPaymentState, BkashStage,
                             return_link_token)


def request(stack, invoice: str | None = None, amount_poisha: int = 50000, **kw) -> BkashPaymentRequest:
    kw.setdefault("provider_timeout", timedelta(seconds=3))
    return BkashPaymentRequest(invoice_number=invoice or stack.invoice(), amount_poisha=amount_poisha,
                               callback_base_url=stack.endpoint_url, **kw)


def link_token(stack, workflow_id: str) -> str:
    return return_link_token(stack.settings.link_secret.get_secret_value().encode(), workflow_id)


def return_url(stack, workflow_id: str) -> str:
    """The payment's callbackURL as bKash got it: /bkash/return/<workflow id>/<token>."""
    return f"{stack.endpoint_url}/bkash/return/{quote(workflow_id, safe='')}/" \
           f"{link_token(stack, workflow_id)}"


def result_url(stack, workflow_id: str) -> str:
    return f"{stack.endpoint_url}/bkash/result/{quote(workflow_id, safe='')}/" \
           f"{link_token(stack, workflow_id)}"


async def pay(stack, **kw) -> tuple[BkashPaymentRequest, ApprovalUrl]:
    req = request(stack, **kw)
    url = await start_payment(stack.client, req, task_queue=stack.settings.task_queue)
    return req, url


async def state(stack, req: BkashPaymentRequest) -> BkashPaymentState:
    return await merchant_client.payment_state(stack.client, req.invoice_number)


async def wait_for_stage(stack, req, stage: BkashStage, timeout: float = 30) -> BkashPaymentState:
    async def poll():
        while True:
            s = await state(stack, req)
            if s.stage is stage:
                return s
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(poll(), timeout)


HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def record_history(handle, prefix: str) -> None:
    """With RECORD_HISTORIES=1, save the finished workflow's history for the replay tests."""
    if os.environ.get("RECORD_HISTORIES"):
        test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0].split("::")[-1]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")
        HISTORIES.mkdir(exist_ok=True)
        history = await handle.fetch_history()
        # Saved histories are ciphertext under the committed test key (tests/conftest.py), so
        # every later session can replay them; anything else would be unreadable or plain.
        started = history.events[0].workflow_execution_started_event_attributes
        key_ids = {p.metadata.get("encryption-key-id", b"").decode()
                   for p in started.input.payloads}
        assert key_ids <= {"test-histories"}, f"not recording a history written with {key_ids}"
        (HISTORIES / f"{prefix}__{name}.json").write_text(history.to_json())


async def result(stack, req):
    """The workflow's result; its history is saved when recording (see record_history)."""
    res = await merchant_client.payment_result(stack.client, req.invoice_number)
    await record_history(stack.client.get_workflow_handle(req.workflow_id), "bkash")
    return res


async def pay_and_capture(stack, **kw):
    """A payment the customer approves and the merchant delivers: (request, approval, result)."""
    req, url = await pay(stack, **kw)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await merchant_client.report_service_delivered(stack.client, req.invoice_number)
    return req, url, await result(stack, req)


def kinds(ledger: list[dict]) -> list[str]:
    return [entry["kind"] for entry in ledger]
