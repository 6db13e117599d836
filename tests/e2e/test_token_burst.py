"""bKash blocks a merchant that makes more than two grant/refresh calls an hour (reference §3.2).
A burst of 200 concurrent payments on a fresh worker must share one token."""

import asyncio
import uuid
from types import SimpleNamespace

from embedded import serve_asgi
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from merchant_client import start_payment
from tests.conftest import SANDBOX, make_settings
from tests.support.bkash import request
from worker import build_activities, build_worker


async def test_a_burst_of_200_payments_uses_one_token_call(dev_env, http, monetix_sandbox_url):
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        task_queue = f"burst-{uuid.uuid4().hex[:8]}"
        settings = make_settings(sandbox_url, "http://127.0.0.1:9", task_queue, monetix_sandbox_url)
        async with build_worker(dev_env.client, task_queue, build_activities(settings, http),
                                max_concurrent_activities=200):
            merchant = SimpleNamespace(endpoint_url="http://127.0.0.1:9",
                                       invoice=lambda: f"BURST-{uuid.uuid4().hex[:10]}")
            reqs = [request(merchant) for _ in range(200)]
            urls = await asyncio.gather(*(start_payment(dev_env.client, r, task_queue=task_queue)
                                          for r in reqs))
            assert len({u.payment_id for u in urls}) == 200
            stats = await BkashSandboxAdmin(sandbox_url, http).stats()
            assert stats["grant_calls"] + stats["refresh_calls"] == 1
            await asyncio.gather(*(dev_env.client.get_workflow_handle(r.workflow_id).cancel()
                                   for r in reqs))
            await asyncio.gather(*(dev_env.client.get_workflow_handle(r.workflow_id).result()
                                   for r in reqs))
            stats = await BkashSandboxAdmin(sandbox_url, http).stats()
            assert stats["grant_calls"] + stats["refresh_calls"] == 1
