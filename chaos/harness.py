"""Run N payments of both kinds under random faults, refund a share of those that end captured /
paid (chaos/refunds.py), and check the invariants (chaos/invariants.py).

Everything is real: the dev server, the worker and the merchant endpoint are separate processes
(killed with SIGKILL and restarted), the sandboxes speak HTTP, customers are driven over HTTP.
The sandboxes stay up: they are the providers, and their ledgers are the truth we check against.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from chaos import refunds
from chaos.invariants import Invariants, RefundInvariants, check_logs_for_secrets
from chaos.processes import DevServer, Endpoint, WorkerProcess
from chaos.refunds import RefundDeck, RefundPlan, drive_refunds
from embedded import free_port, serve_asgi
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer
from contracts.common import SearchAttribute
from merchant_client import (
    provide_clarification,
    report_service_delivered,
    report_service_failed,
    start_gate_purchase,
    start_payment,
    submit_transaction_id,
)
from merchant_client.calls import KEYS
from contracts.bkash import BkashPaymentRequest
from contracts.monetix import MonetixPurchaseRequest

PROVIDER_TIMEOUT = 2.0  # short configured timeouts: a lost answer costs seconds, not 30 s
assert refunds.PROVIDER_TIMEOUT == PROVIDER_TIMEOUT  # the refunds ledgers' provider timeout

# name -> (operation, kind, extra) for the bKash sandbox; matched to the payment's paymentID.
BKASH_FAULTS: dict[str, tuple[str, str, dict] | None] = {
    "bkash: none": None,
    "bkash: execute answer lost after commit": ("execute", "delay_after_commit",
                                                {"delay_seconds": PROVIDER_TIMEOUT + 1.5}),
    "bkash: execute connection dropped before commit": ("execute", "drop_connection",
                                                        {"commit": False}),
    "bkash: capture answer lost after commit": ("capture", "delay_after_commit",
                                                {"delay_seconds": PROVIDER_TIMEOUT + 1.5}),
    "bkash: capture 5xx": ("capture", "http_error", {"status": 503, "times": 2}),
    "bkash: void connection dropped after commit": ("void", "drop_connection", {"commit": True}),
    "bkash: already-settled code on capture": ("capture", "error_code", {"code": "2119"}),
    "bkash: token expired mid-flow": ("execute", "expire_token", {}),
    "bkash: customer closes the tab after approving": ("page", "no_redirect", {}),
    "bkash: customer's return repeated": ("page", "repeat_redirect", {}),
}
BKASH_CUSTOMER = ["approve", "approve", "approve", "approve", "cancel", "insufficient", "abandon"]
BKASH_DECISION = ["deliver", "deliver", "fail", "none"]

MONETIX_FAULTS: dict[str, tuple[str, str, dict] | None] = {
    "monetix: none": None,
    "monetix: callbacks duplicated": ("callback", "duplicate", {}),
    "monetix: final callback out of order": ("callback", "out_of_order", {"status": "success"}),
    "monetix: final callback never delivered": ("callback", "lose", {"status": "success"}),
    "monetix: final callback replayed late": ("callback", "late_replay",
                                              {"status": "success", "delay_seconds": 3}),
    "monetix: callbacks delayed": ("callback", "delay", {"delay_seconds": 3}),
    "monetix: sale 5xx after commit": ("sale", "http_error", {"status": 502, "commit": True}),
    "monetix: clarification dropped after commit": ("clarification", "drop_connection",
                                                    {"commit": True}),
}
MONETIX_CUSTOMER = ["pay", "pay", "pay", "pay_more", "insufficient", "never", "omit_account"]


@dataclass
class Payment:
    kind: str
    key: str
    fault: str
    customer: str
    decision: str = ""
    amount_poisha: int = 0  # what the merchant asked for
    started: bool = False
    notes: list[str] = field(default_factory=list)
    refund: RefundPlan | None = None  # refunds once the payment has ended captured / paid


@dataclass
class Report:
    seed: int
    count: int
    injected: Counter = field(default_factory=Counter)
    survived: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    refunds: Counter = field(default_factory=Counter)  # merchant answers, REFUND lines
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"chaos run: seed {self.seed}, {self.count} payments, {self.seconds:.0f} s"]
        width = max(len(k) for k in self.injected) if self.injected else 10
        for kind in sorted(self.injected):
            out.append(f"  {kind:<{width}}  injected {self.injected[kind]:>3}  "
                       f"survived {self.survived[kind]:>3}")
        out.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        if self.refunds:
            out.append("  refunds: " + ", ".join(f"{k} {v}" for k, v in sorted(self.refunds.items())))
        out.append(f"  violations: {len(self.violations)}")
        out.extend(f"    - {v}" for v in self.violations)
        return out


async def retrying(what: str, fn: Callable[[], Awaitable], *, budget: float = 90.0,
                   attempt_timeout: float = 15.0):
    """Merchant code in a chaotic world: retry a Temporal call while the server, the worker or
    the endpoint is restarting. Every call retried here is idempotent (update ids, USE_EXISTING).
    A PaymentError is the answer, except "no running ..." and "Temporal ... is unavailable" (the
    merchant client's word for a server that is restarting: "retry when it is back")."""
    deadline = time.monotonic() + budget
    while True:
        try:
            return await asyncio.wait_for(fn(), attempt_timeout)
        except Exception as exc:  # noqa: BLE001
            transient = "no running" in str(exc) or "unavailable" in str(exc)
            if time.monotonic() > deadline or "rejected" in str(exc).lower() \
                    or type(exc).__name__ == "PaymentError" and not transient:
                raise
            await asyncio.sleep(0.5)


class Chaos:
    def __init__(self, seed: int, count: int, workdir: Path, *, worker_kills: int,
                 server_restarts: int, endpoint_restarts: int, refund_share: float = 0.0,
                 refund_kinds: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        # Refunds draw from Randoms of their own: the payments' draws stay what they were.
        self.refund_deck = RefundDeck(seed, refund_share, refund_kinds)
        self.seed, self.count, self.workdir = seed, count, workdir
        self.worker_kills, self.server_restarts = worker_kills, server_restarts
        self.endpoint_restarts = endpoint_restarts
        self.report = Report(seed, count)
        self.payments: list[Payment] = []
        self.task_queue = f"chaos-{seed}-{int(time.time())}"
        self.bkash_cfg = BkashSandboxConfig()
        self.monetix_cfg = MonetixSandboxConfig()
        # The result links' secret, shared by the worker and the endpoint (one per run).
        self.link_secret = secrets.token_urlsafe(32)
        # Faults are dealt from shuffled decks, so every kind appears once the run is long enough.
        self._decks: dict[str, list[str]] = {"bkash": [], "monetix": []}

    def _deal(self, kind: str, faults: dict) -> str:
        deck = self._decks[kind]
        if not deck:
            deck.extend(faults)
            self.rng.shuffle(deck)
        return deck.pop()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> Report:
        started = time.monotonic()
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.server = DevServer(free_port(), free_port(), self.workdir / "temporal.db", logs)
        self.endpoint = self.worker = None
        try:
            await self.server.start()
            async with serve_asgi(create_bkash_sandbox(self.bkash_cfg)) as bkash_url, \
                    serve_asgi(create_monetix_sandbox(self.monetix_cfg)) as monetix_url, \
                    httpx.AsyncClient(timeout=30) as http, httpx.AsyncClient(timeout=30) as browser:
                env = self._env(bkash_url, monetix_url)
                self.endpoint = Endpoint(free_port(), env, logs)
                self.worker = WorkerProcess({**env, "PAYMENTS_CALLBACK_BASE_URL": ""}, logs)
                await self.endpoint.start()
                self.worker.env["PAYMENTS_CALLBACK_BASE_URL"] = self.endpoint.url
                await self.worker.start()
                self.client = await Client.connect(self.server.address,
                                                   data_converter=pydantic_data_converter)
                self.bkash = BkashSandboxAdmin(bkash_url, http)
                self.monetix = MonetixSandboxAdmin(monetix_url, http)
                self.bkash_customer = BkashCustomer(browser)
                self.monetix_customer = MonetixBkashCustomer(browser, monetix_url)
                drivers = [self._drive(self._plan(i)) for i in range(self.count)]
                await asyncio.gather(self._process_faults(), *drivers)
                await self._wait_until_all_closed(timedelta(minutes=3))
                invariants = Invariants(self.client, self.bkash, self.monetix, self.report)
                await invariants.check(self.payments)
                await RefundInvariants(self.client, self.bkash, self.monetix,
                                       self.report).check(self.payments)
                invariants.process_faults_survived()
        finally:
            # Whatever started is stopped, a failed start-up included.
            for process in (self.worker, self.endpoint, self.server):
                if process is not None:
                    await process.stop()
        check_logs_for_secrets(logs, {"bKash app_secret": self.bkash_cfg.app_secret,
                                      "bKash password": self.bkash_cfg.password,
                                      "Monetix secret key": self.monetix_cfg.secret_key,
                                      "result-link secret": self.link_secret},
                               self.report)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _env(self, bkash_url: str, monetix_url: str) -> dict[str, str]:
        b, m = self.bkash_cfg, self.monetix_cfg
        return {"TEMPORAL_ADDRESS": self.server.address, "TEMPORAL_NAMESPACE": "default",
                "BKASH_BASE_URL": f"{bkash_url}/v1.2.0-beta", "BKASH_APP_KEY": b.app_key,
                "BKASH_APP_SECRET": b.app_secret, "BKASH_USERNAME": b.username,
                "BKASH_PASSWORD": b.password, "BKASH_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT),
                "MONETIX_PROJECT_ID": str(m.project_id), "MONETIX_SECRET_KEY": m.secret_key,
                "MONETIX_BASE_URL": monetix_url, "MONETIX_PAYMENT_PAGE_URL": monetix_url,
                "PAYMENTS_TASK_QUEUE": self.task_queue, "PAYMENTS_CALLBACK_BASE_URL": "http://x",
                "BKASH_TOKEN_CACHE_FILE": str(self.workdir / "bkash-token.json"),
                "PAYMENTS_LINK_SECRET": self.link_secret}

    def _plan(self, i: int) -> Payment:
        if i % 2 == 0:
            fault = self._deal("bkash", BKASH_FAULTS)
            p = Payment("bkash", f"CHAOS-{self.seed}-{i}", fault,
                        self.rng.choice(BKASH_CUSTOMER), self.rng.choice(BKASH_DECISION))
            if fault == "bkash: customer closes the tab after approving" or \
                    fault.startswith("bkash: execute") or fault == "bkash: token expired mid-flow" \
                    or fault == "bkash: customer's return repeated":
                p.customer = "approve"
            if fault in ("bkash: capture answer lost after commit", "bkash: capture 5xx",
                         "bkash: already-settled code on capture"):
                p.customer, p.decision = "approve", "deliver"
            if fault == "bkash: void connection dropped after commit":
                p.customer, p.decision = "approve", "fail"
        else:
            fault = self._deal("monetix", MONETIX_FAULTS)
            p = Payment("monetix", f"chaos-{self.seed}-{i}", fault,
                        self.rng.choice(MONETIX_CUSTOMER))
            if fault != "monetix: none" and fault != "monetix: sale 5xx after commit":
                p.customer = "pay"
        refundable = (p.customer, p.decision) == ("approve", "deliver") if p.kind == "bkash" \
            else p.customer in ("pay", "pay_more", "omit_account")
        p.refund = self.refund_deck.plan(i, p.kind, refundable)
        self.payments.append(p)
        self.report.injected[p.fault] += 1
        return p

    async def _drive(self, p: Payment) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.count * 0.15))  # spread the starts
        try:
            if p.kind == "bkash":
                await self._drive_bkash(p)
            else:
                await self._drive_monetix(p)
        except Exception as exc:  # noqa: BLE001 - the invariants decide; keep a note
            p.notes.append(f"driver: {type(exc).__name__}: {exc}")
        await drive_refunds(self, p)

    async def _fault(self, admin, p: Payment, faults: dict, match: dict) -> None:
        spec = faults[p.fault]
        if spec:
            op, kind, extra = spec
            extra = dict(extra)
            status = extra.pop("status", None) if op == "callback" else None
            if status:
                match = {**match, "status": status}
            await admin.add_fault(op, kind, match=match, **extra)

    async def _drive_bkash(self, p: Payment) -> None:
        p.amount_poisha = self.rng.randint(1, 900) * 100
        req = BkashPaymentRequest(invoice_number=p.key, amount_poisha=p.amount_poisha,
                                  callback_base_url=self.endpoint.url,
                                  approval_window=timedelta(seconds=15),
                                  hold_deadline=timedelta(seconds=6),
                                  provider_timeout=timedelta(seconds=PROVIDER_TIMEOUT))
        if p.fault == "bkash: token expired mid-flow":
            await self.bkash.add_fault("execute", "expire_token", match={"merchantInvoiceNumber": p.key})
        url = await retrying("start", lambda: start_payment(self.client, req,
                                                             task_queue=self.task_queue))
        p.started = True
        if p.fault != "bkash: token expired mid-flow":
            await self._fault(self.bkash, p, BKASH_FAULTS, {"paymentID": url.payment_id})
        try:
            if p.customer == "approve":
                await self.bkash_customer.approve(url.bkash_url)
            elif p.customer == "insufficient":
                await self.bkash_customer.approve(url.bkash_url, wallet="01823074817")
            elif p.customer == "cancel":
                await self.bkash_customer.cancel(url.bkash_url)
        except httpx.HTTPError as exc:
            p.notes.append(f"customer's browser: {type(exc).__name__}")  # like a closed tab
        if p.customer not in ("approve",) or p.decision == "none":
            return
        if not await self._reaches_authorized(req.workflow_id):
            return
        if p.decision == "deliver":
            await retrying("deliver", lambda: report_service_delivered(self.client, p.key))
        else:
            await retrying("fail", lambda: report_service_failed(self.client, p.key, "chaos"))

    async def _reaches_authorized(self, workflow_id: str) -> bool:
        # The stage search attribute is answered by the server alone, even while the worker is down.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                desc = await self.client.get_workflow_handle(workflow_id).describe()
                stage = desc.typed_search_attributes.get(KEYS[SearchAttribute.PAYMENT_STAGE])
                if stage == "AUTHORIZED":
                    return True
                if desc.close_time is not None or stage in ("CAPTURING", "VOIDING"):
                    return False
            except Exception:  # noqa: BLE001 - server restarting
                pass
            await asyncio.sleep(0.3)
        return False

    async def _drive_monetix(self, p: Payment) -> None:
        amount = p.amount_poisha = self.rng.randint(1, 50) * 1000
        account = None if p.customer == "omit_account" else "01712345678"
        req = MonetixPurchaseRequest(
            sale={"payment_id": p.key, "amount_poisha": amount, "account_number": account,
                  "customer": {"id": "c-1", "ip_address": "203.0.113.7", "first_name": "A",
                               "last_name": "B", "email": "a@example.com"}},
            callback_base_url=self.endpoint.url, instructions_wait=timedelta(seconds=5),
            transaction_id_window=timedelta(seconds=15), final_callback_wait=timedelta(seconds=3),
            provider_timeout=timedelta(seconds=PROVIDER_TIMEOUT))
        if MONETIX_FAULTS[p.fault] and MONETIX_FAULTS[p.fault][0] in ("sale", "callback",
                                                                      "clarification"):
            await self._fault(self.monetix, p, MONETIX_FAULTS, {"payment_id": p.key})
        shown = await retrying("start", lambda: start_gate_purchase(self.client, req,
                                                                     task_queue=self.task_queue),
                               attempt_timeout=40)
        p.started = True
        if shown.clarification_fields is not None and not shown.display_data:
            await retrying("clarify", lambda: provide_clarification(
                self.client, p.key, {"account": {"number": "01798765432"}}))
        if p.customer == "never":
            return
        await self._wait_for_instructions(req.workflow_id)
        pay_amount = amount + 1000 if p.customer == "pay_more" else None
        wallet = "01823074817" if p.customer == "insufficient" else None
        trx = await self.monetix_customer.pay_in_bkash(p.key, amount=pay_amount, wallet=wallet)
        await retrying("txn", lambda: submit_transaction_id(self.client, p.key, trx))

    async def _wait_for_instructions(self, workflow_id: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                desc = await self.client.get_workflow_handle(workflow_id).describe()
                if desc.typed_search_attributes.get(KEYS[SearchAttribute.PAYMENT_STAGE]) == "AWAITING_TRANSACTION_ID" \
                        or desc.close_time is not None:
                    return
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(0.3)

    async def _process_faults(self) -> None:
        """kill -9 of the worker at random points, restarts of the dev server and the endpoint."""
        span = max(10.0, self.count * 0.15 + 10)
        events = [("worker", self.rng.uniform(1, span)) for _ in range(self.worker_kills)]
        events += [("server", self.rng.uniform(span * 0.3, span * 0.7))
                   for _ in range(self.server_restarts)]
        events += [("endpoint", self.rng.uniform(2, span)) for _ in range(self.endpoint_restarts)]
        start = time.monotonic()
        for what, at in sorted(events, key=lambda e: e[1]):
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            if what == "worker":
                self.report.injected["process: worker kill -9"] += 1
                await self.worker.restart(down_for=self.rng.uniform(0.2, 1.5))
            elif what == "server":
                self.report.injected["process: dev server restart (persistence file)"] += 1
                await self.server.stop()
                await asyncio.sleep(0.5)
                self.server.restarts += 1
                await self.server.start()
            else:
                self.report.injected["process: endpoint kill -9 while delivering"] += 1
                await self.endpoint.restart(down_for=self.rng.uniform(0.2, 1.0))

    async def _wait_until_all_closed(self, limit: timedelta) -> None:
        deadline = time.monotonic() + limit.total_seconds()
        # Refund ledgers stay open for their window (days): their refunds are checked instead.
        query = (f'TaskQueue="{self.task_queue}" AND ExecutionStatus="Running" '
                 'AND WorkflowType!="PaymentRefunds"')
        while time.monotonic() < deadline:
            try:
                if (await self.client.count_workflows(query)).count == 0:
                    return
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(1)
        async for wf in self.client.list_workflows(query):
            self.report.violations.append(f"{wf.id} still running {limit} after the last "
                                          "payment was driven (stuck)")

async def run_chaos(seed: int, count: int, *, workdir: Path | None = None, worker_kills: int = 3,
                    server_restarts: int = 1, endpoint_restarts: int = 1,
                    refund_share: float = 0.5, refund_kinds: list[str] | None = None) -> Report:
    """``refund_share``: the share of payments meant to end captured / paid that get refunds
    (0: no refunds, the run as it was before refunds); ``refund_kinds``: deal only these
    (``chaos.refunds.BKASH_REFUND_KINDS`` / ``MONETIX_REFUND_KINDS``; default all)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    chaos = Chaos(seed, count, workdir, worker_kills=worker_kills,
                  server_restarts=server_restarts, endpoint_restarts=endpoint_restarts,
                  refund_share=refund_share, refund_kinds=refund_kinds)
    report = await chaos.run()
    (workdir / "report.json").write_text(json.dumps({
        "seed": seed, "count": count, "seconds": report.seconds,
        "injected": report.injected, "survived": report.survived,
        "outcomes": report.outcomes, "violations": report.violations,
        "refunds": report.refunds,
        "notes": {p.key: p.notes for p in chaos.payments if p.notes},
        "refund_plans": {p.key: {"kind": p.refund.kind, "captured_poisha": p.refund.captured_poisha,
                                 "notes": p.refund.notes,
                                 "steps": [{"refund_id": s.refund_id, "amount_poisha": s.amount_poisha,
                                            "expect": s.expect, "outcome": s.outcome,
                                            "detail": s.detail} for s in p.refund.steps]}
                         for p in chaos.payments if p.refund and p.refund.executed}}, indent=2))
    return report
