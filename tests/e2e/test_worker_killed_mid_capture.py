"""Issue 14 §2, recovery: a worker killed with SIGKILL while bKash holds its capture's answer.

The capture reached bKash and was applied; its answer never reaches the dead worker. The attempt
heartbeats while the call is pending, so the server gives it up on the heartbeat timeout (not the
start-to-close timeout of 3 × the provider timeout + 5 s), and the retry on the other host asks
bKash first: the payment is CAPTURED once, with one capture call at bKash.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
from temporalio.api.enums.v1 import EventType, TimeoutType

from contracts.bkash import BkashActivity, BkashPaymentRequest, BkashStage
from embedded import serve_asgi
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from merchant_client import payment_result, payment_state, report_service_delivered, start_payment
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from tests.conftest import LINK_SECRET, MONETIX, SANDBOX
from tests.e2e.test_three_hosts_one_token import Host
from tests.support.bkash import kinds


async def wait_for(check, what: str, seconds: float = 90) -> None:
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {seconds} s")


async def test_a_capture_in_flight_on_a_killed_worker_is_retried_on_another_and_captured_once(
        dev_env, tmp_path, http):
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url, \
            serve_asgi(create_endpoint(dev_env.client, links=ResultLinks(LINK_SECRET.encode()),
                                       monetix_projects={MONETIX.project_id: MONETIX.secret_key}),
                       ) as endpoint_url:
        sandbox = BkashSandboxAdmin(sandbox_url, http)
        task_queue = f"killed-{uuid.uuid4().hex[:8]}"
        env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
               "TEMPORAL_NAMESPACE": "default", "PAYMENTS_TASK_QUEUE": task_queue,
               "BKASH_BASE_URL": f"{sandbox_url}/v1.2.0-beta", "BKASH_APP_KEY": SANDBOX.app_key,
               "BKASH_APP_SECRET": SANDBOX.app_secret, "BKASH_USERNAME": SANDBOX.username,
               "BKASH_PASSWORD": SANDBOX.password, "BKASH_TIMEOUT_SECONDS": "30",
               "PAYMENTS_CALLBACK_BASE_URL": endpoint_url, "PAYMENTS_LINK_SECRET": LINK_SECRET,
               "PYTHONUNBUFFERED": "1"}
        first, second = Host(0, env, tmp_path), Host(1, env, tmp_path)
        await first.start()
        try:
            req = BkashPaymentRequest(invoice_number=f"KILLED-{task_queue}", amount_poisha=65000,
                                      callback_base_url=endpoint_url)
            url = await start_payment(dev_env.client, req, task_queue=task_queue)
            async with httpx.AsyncClient(timeout=30) as browser:
                await BkashCustomer(browser).approve(url.bkash_url)

            async def authorized() -> bool:
                state = await payment_state(dev_env.client, req.invoice_number)
                return state.stage is BkashStage.AUTHORIZED
            await wait_for(authorized, "AUTHORIZED")
            # bKash applies the capture, then holds its answer far past the heartbeat timeout.
            await sandbox.add_fault("capture", "delay_after_commit", delay_seconds=120,
                                    match={"paymentID": url.payment_id})
            await report_service_delivered(dev_env.client, req.invoice_number)

            async def captured_at_bkash() -> bool:
                return "CAPTURE" in kinds(await sandbox.ledger(payment_id=url.payment_id))
            await wait_for(captured_at_bkash, "the capture committed at bKash")
            first.kill9()
            await first.proc.wait()
            await second.start()
            res = await asyncio.wait_for(payment_result(dev_env.client, req.invoice_number), 120)
        finally:
            await asyncio.gather(first.stop(), second.stop())
        await sandbox.clear_faults()

        assert res.stage is BkashStage.CAPTURED
        assert kinds(await sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]
        calls = await sandbox.calls(payment_id=url.payment_id)
        assert calls["capture"] == 1 and calls["query"] >= 1, calls  # the retry asked first
        history = await dev_env.client.get_workflow_handle(url.workflow_id).fetch_history()
        capture_ids = {e.event_id for e in history.events
                       if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                       and e.activity_task_scheduled_event_attributes.activity_type.name
                       == BkashActivity.CAPTURE_PAYMENT}
        (scheduled,) = capture_ids
        failures = [e for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    and e.activity_task_completed_event_attributes.scheduled_event_id == scheduled]
        assert failures, "the capture activity completed"
        started = next(e for e in history.events
                       if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                       and e.activity_task_started_event_attributes.scheduled_event_id == scheduled)
        attrs = started.activity_task_started_event_attributes
        # The attempt that completed is a retry, and the one before it ended on its heartbeat.
        assert attrs.attempt >= 2
        assert attrs.last_failure.timeout_failure_info.timeout_type \
            == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, attrs.last_failure
