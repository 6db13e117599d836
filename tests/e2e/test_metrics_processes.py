"""README "Metrics" as an operator runs it: `python worker.py` with PAYMENTS_METRICS_ADDRESS and
`python -m endpoint --metrics-port`, each scraped over HTTP after one bKash payment made through
them (approved by the customer through the endpoint, then voided), plus one foreign callback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx

from contracts.bkash import BkashStage
from embedded import free_port, serve_asgi
from merchant_client import payment_result, report_service_failed, start_payment
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.customer import BkashCustomer
from tests.conftest import LINK_SECRET, SANDBOX
from tests.e2e.test_metrics import samples, total
from tests.support.bkash import request, wait_for_stage

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A child process whose stderr is read as it comes (a full pipe would stall it)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc, self.output = proc, b""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self.proc.stderr.readline():
            self.output += line

    async def wait_for(self, text: bytes, timeout: float = 30) -> None:
        async def seen() -> None:
            while text not in self.output:
                assert self.proc.returncode is None, self.output.decode()[-2000:]
                await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(seen(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {text!r} within {timeout:g} s: "
                                 f"{self.output.decode()[-2000:]}") from None

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 40)
        except asyncio.TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        await self._reader
        return code


@contextlib.asynccontextmanager
async def started(*argv: str, env: dict[str, str]):
    proc = Process(await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE))
    try:
        yield proc
    finally:
        await proc.stop()


async def listening(url: str, timeout: float = 15) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(timeout / 0.1)):
            with contextlib.suppress(httpx.TransportError):
                await http.get(url)
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listening on {url} after {timeout:g} s")


async def scrape(url: str, until: str, timeout: float = 15) -> str:
    """The page once ``until`` is on it (the SDK's exporter collects every second or so)."""
    async with httpx.AsyncClient() as http:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            text = (await http.get(url)).text
            if until in text or asyncio.get_running_loop().time() > deadline:
                return text
            await asyncio.sleep(0.3)


async def test_worker_and_endpoint_processes_serve_their_metrics(dev_env):
    worker_metrics, port, endpoint_metrics = free_port(), free_port(), free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    queue = f"metrics-{os.getpid()}-{worker_metrics}"
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as sandbox_url:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BKASH_", "MONETIX_", "PAYMENTS_", "TEMPORAL_"))}
        env.update(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
                   TEMPORAL_NAMESPACE="default", PAYMENTS_TASK_QUEUE=queue,
                   PAYMENTS_ENCRYPTION_KEYS=os.environ["PAYMENTS_ENCRYPTION_KEYS"],
                   PAYMENTS_LINK_SECRET=LINK_SECRET, PAYMENTS_CALLBACK_BASE_URL=endpoint_url,
                   BKASH_BASE_URL=f"{sandbox_url}/v1.2.0-beta", BKASH_APP_KEY=SANDBOX.app_key,
                   BKASH_APP_SECRET=SANDBOX.app_secret, BKASH_USERNAME=SANDBOX.username,
                   BKASH_PASSWORD=SANDBOX.password, BKASH_TOKEN_CACHE_FILE="")
        async with started("worker.py", env={
                **env, "PAYMENTS_METRICS_ADDRESS": f"127.0.0.1:{worker_metrics}"}) as worker, \
                started("-m", "endpoint", "--port", str(port), "--metrics-port",
                        str(endpoint_metrics), env=env) as endpoint:
            await worker.wait_for(b"worker polling")
            await endpoint.wait_for(b"endpoint metrics on")
            await listening(endpoint_url)
            worker_url = f"http://127.0.0.1:{worker_metrics}/metrics"
            idle = await scrape(worker_url, "payments_stalled")

            merchant = SimpleNamespace(endpoint_url=endpoint_url,
                                       invoice=lambda: f"INV-{os.urandom(5).hex()}")
            stack = SimpleNamespace(client=dev_env.client)
            req = request(merchant)
            url = await start_payment(dev_env.client, req, task_queue=queue)
            async with httpx.AsyncClient(timeout=30) as browser:
                await BkashCustomer(browser).approve(url.bkash_url)
                await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
                await report_service_failed(dev_env.client, req.invoice_number)
                assert (await payment_result(dev_env.client, req.invoice_number)).stage is \
                    BkashStage.VOIDED
                forged = await browser.post(f"{endpoint_url}/monetix/callback", json={
                    "project_id": 999, "payment": {"id": "P-1", "status": "success"},
                    "signature": "x"})
                assert forged.status_code == 400
            text = await scrape(worker_url, 'stage="VOIDED"')
            page = await scrape(f"http://127.0.0.1:{endpoint_metrics}/metrics", "refused")
            async with httpx.AsyncClient() as http:
                public = await http.get(f"{endpoint_url}/metrics")
        assert (worker.proc.returncode, endpoint.proc.returncode) == (0, 0), \
            (worker.output.decode()[-2000:], endpoint.output.decode()[-2000:])

    # The worker: the SDK's runtime metrics and the project's, on one page.
    assert any(name.startswith("temporal_") for name, _, _ in samples(idle)), idle[:2000]
    assert total(idle, "bkash_token_budget_remaining", account="default") == 2
    # The stalled-payment gauge, one series per watched stage (its counting: test_stalled_payments).
    assert {labels.get("stage") for name, labels, _ in samples(idle)
            if name == "payments_stalled"} == {"CAPTURING", "VOIDING", "REFUNDING"}, idle[-3000:]
    assert total(text, "temporal_workflow_completed_total") >= 1
    assert total(text, "payments_started_total", provider="bkash") == 1
    assert total(text, "payments_finished_total", provider="bkash", stage="VOIDED") == 1
    assert total(text, "provider_calls_total", operation="void_payment", outcome="ok") == 1
    assert total(text, "bkash_token_calls_total", operation="grant", outcome="ok") == 1
    assert total(text, "bkash_token_budget_remaining", account="default") == 1
    # The endpoint: its own listener, never the public port.
    assert total(page, "endpoint_requests_total", kind="bkash returns", verdict="accepted") == 1
    assert total(page, "endpoint_requests_total", kind="monetix callbacks", verdict="refused",
                 reason="unknown project") == 1
    assert public.status_code == 404
