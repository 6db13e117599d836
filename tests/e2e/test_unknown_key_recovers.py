"""README "Customer data": a payload whose key is unknown fails with a clear error naming the key
id, and nothing is lost: fixing the configuration lets the workflow continue.

Merchant code already writes with a new key A (put first, the old key B below it) while the worker
still has only B: the payment's first workflow task fails naming key id A, in the history (the
message holds key ids only, so it is readable without any key) and in the worker's log, never a
key's value; the payment stays Running. A worker given A (and B) picks it up where it stopped and
the payment completes, one authorization and one capture at bKash.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import timedelta

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from contracts.bkash import BkashPaymentRequest, BkashStage
from embedded import serve_asgi
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from merchant_client import payment_result, payment_state, report_service_delivered, start_payment
from merchant_client.encryption import EncryptionKeys, data_converter, load_keys
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from tests.conftest import LINK_SECRET, MONETIX
from tests.e2e.test_key_rotation import ROTATED_KEY
from tests.support.bkash import kinds
from worker import build_worker

# Key A is the rotation test's new key, so the later scans of the whole server (test_zz_*), which
# hold it, can read what this payment leaves; key B is the session's.
KEY_A_ID = ROTATED_KEY.split(":", 1)[0]


async def _eventually(check, what: str, seconds: float = 60):
    for _ in range(int(seconds * 10)):
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what} within {seconds} s")


async def test_a_payload_with_an_unknown_key_waits_named_and_completes_once_the_key_is_added(
        dev_env, bkash_sandbox_url, http, shared_activities, collected_logs):
    key_b = load_keys()
    assert key_b is not None and KEY_A_ID not in key_b.keys
    a_then_b = EncryptionKeys.parse(ROTATED_KEY, "key A").keys | dict(key_b.keys)
    both = data_converter(EncryptionKeys(current=KEY_A_ID, keys=a_then_b))
    host = dev_env.client.service_client.config.target_host
    merchant = await Client.connect(host, data_converter=both)  # A first, B below it
    task_queue = f"unknown-key-{uuid.uuid4().hex[:8]}"
    logged_from = len(collected_logs)

    async with serve_asgi(create_endpoint(merchant, links=ResultLinks(LINK_SECRET.encode()),
                                          monetix_projects={MONETIX.project_id:
                                                            MONETIX.secret_key})) as endpoint_url:
        req = BkashPaymentRequest(invoice_number=f"UNKNOWN-KEY-{task_queue}", amount_poisha=70000,
                                  callback_base_url=endpoint_url,
                                  provider_timeout=timedelta(seconds=3))
        start = asyncio.create_task(start_payment(merchant, req, task_queue=task_queue))
        handle = dev_env.client.get_workflow_handle(req.workflow_id)

        async def task_failed():
            try:
                history = await handle.fetch_history()
            except RPCError:  # not started yet
                return []
            return [e for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]

        async with build_worker(dev_env.client, task_queue, shared_activities):  # only key B
            failed = await _eventually(task_failed, "WorkflowTaskFailed")
            await _eventually(lambda: _logged(collected_logs[logged_from:], KEY_A_ID),
                              "worker log line naming the key id")
        message = failed[0].workflow_task_failed_event_attributes.failure.message
        assert f"key id {KEY_A_ID!r}, which is not configured" in message, message
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert not start.done() or not start.exception(), start

        async with build_worker(merchant, task_queue, shared_activities):  # the key added
            url = await asyncio.wait_for(start, 120)
            async with httpx.AsyncClient(timeout=30) as browser:
                await BkashCustomer(browser).approve(url.bkash_url)

            async def authorized():
                state = await payment_state(merchant, req.invoice_number)
                return state.stage is BkashStage.AUTHORIZED
            await _eventually(authorized, "AUTHORIZED")
            await report_service_delivered(merchant, req.invoice_number)
            res = await asyncio.wait_for(payment_result(merchant, req.invoice_number), 60)

    assert res.stage is BkashStage.CAPTURED
    ledger = await BkashSandboxAdmin(bkash_sandbox_url, http).ledger(payment_id=url.payment_id)
    assert kinds(ledger) == ["AUTHORIZE", "CAPTURE"]
    lines = collected_logs[logged_from:]
    for key in a_then_b.values():
        material = base64.b64encode(key).decode()
        assert not [line for line in lines if material in line or material[:16] in line]


async def _logged(lines: list[str], key_id: str) -> bool:
    return any(f"key id {key_id!r}" in line for line in lines)
