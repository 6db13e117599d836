"""Run N payments of both kinds under random faults, refund a share of those that end captured /
paid (chaos/refunds.py), and check the invariants (chaos/invariants.py).

Everything is real: the dev server, the worker(s) and the merchant endpoint are separate processes
(killed with SIGKILL and restarted, paced by time: chaos/pacing.py), the sandboxes speak HTTP,
customers are driven over HTTP. The sandboxes stay up: they are the providers, and their ledgers
are the truth we check against. With several workers ("hosts"), each has its own token cache file
and all share one Redis-backed bKash token store.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from merchant_client.encryption import EncryptionKeys, data_converter, new_key_line

from chaos import refunds
from chaos.customers import PatientBkashCustomer
from chaos.invariants import Invariants, RefundInvariants, check_logs_for_secrets
from chaos.pacing import Budgets, Pacing, ProcessFaults
from chaos.processes import DevServer, Endpoint, WorkerProcess
from chaos.refunds import RefundDeck, RefundPlan, drive_refunds
from chaos.report import Report
from chaos.tokens import BUDGET_SPENT, BUDGET_SPENT_CARDS, TOKEN_EXPIRED, TOKEN_FAULTS, TokenBudget
from embedded import RedisServer, free_port, serve_asgi
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
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
    TOKEN_EXPIRED: ("execute", "expire_token", {}),  # paced: chaos/tokens.py
    "bkash: customer closes the tab after approving": ("page", "no_redirect", {}),
    "bkash: customer's return repeated": ("page", "repeat_redirect", {}),
}
# A bKash page that reaches the customer later than (approval window - this) after the start may
# be approved after the window ended: the customer is taken to have left.
LATE_PAGE_MARGIN = 10.0
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
    start_at: float = 0.0   # seconds after the run's first start
    started: bool = False
    notes: list[str] = field(default_factory=list)
    refund: RefundPlan | None = None  # refunds once the payment has ended captured / paid


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
    def __init__(self, seed: int, count: int, workdir: Path, *, pacing: Pacing | None = None,
                 refund_share: float = 0.0, refund_kinds: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        # Refunds draw from Randoms of their own: the payments' draws stay what they were.
        self.refund_deck = RefundDeck(seed, refund_share, refund_kinds)
        self.seed, self.count, self.workdir = seed, count, workdir
        self.pacing = pacing or Pacing()
        self.budgets = Budgets.of(self.pacing, PROVIDER_TIMEOUT)
        self.report = Report(seed, count)
        self.payments: list[Payment] = []
        self.task_queue = f"chaos-{seed}-{int(time.time())}"
        # The spent-budget mode: bKash's hour (and its lockout) last token_budget_window seconds.
        w = self.pacing.token_budget_window
        self.bkash_cfg = BkashSandboxConfig(**({"token_window_seconds": w, "lockout_seconds": w}
                                               if w else {}))
        self.monetix_cfg = MonetixSandboxConfig()
        # The result links' secret, shared by the worker and the endpoint (one per run).
        self.link_secret = secrets.token_urlsafe(32)
        self.payload_key = new_key_line("chaos")  # the run's payload encryption key
        # Faults are dealt from shuffled decks, so every kind appears once the run is long enough.
        self._decks: dict[str, list[str]] = {"bkash": [], "monetix": []}
        # Forced token expiries: at most (token_calls_per_hour - 1) an hour (chaos/tokens.py).
        self.tokens = TokenBudget(self.bkash_cfg.token_calls_per_hour, self.budgets.end_wait,
                                  self.bkash_cfg.token_window_seconds)
        self.bkash_kinds = [k for k in BKASH_FAULTS if k != TOKEN_EXPIRED] \
            + [BUDGET_SPENT] * BUDGET_SPENT_CARDS if w else list(BKASH_FAULTS)
        self.workers: list[WorkerProcess] = []
        self.redis: RedisServer | None = None

    def _deal(self, kind: str, faults) -> str:
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
        self.endpoint = None
        try:
            await self.server.start()
            if self.pacing.workers > 1:
                self.redis = RedisServer(self.workdir / "redis").start()
            async with serve_asgi(create_bkash_sandbox(self.bkash_cfg)) as bkash_url, \
                    serve_asgi(create_monetix_sandbox(self.monetix_cfg)) as monetix_url, \
                    httpx.AsyncClient(timeout=30) as http, httpx.AsyncClient(timeout=30) as browser:
                env = self._env(bkash_url, monetix_url)
                self.endpoint = Endpoint(free_port(), dict(env), logs)
                await self.endpoint.start()
                env["PAYMENTS_CALLBACK_BASE_URL"] = self.endpoint.url
                for i in range(1, self.pacing.workers + 1):
                    self.workers.append(WorkerProcess(self._host_env(env, i), logs,
                                                      "worker" if i == 1 else f"worker-{i}"))
                    await self.workers[-1].start()
                # Encrypted, as the embedded default and production are: every process of the
                # run (worker, endpoint, this client) has the run's payload key.
                self.client = await Client.connect(self.server.address, data_converter=data_converter(
                    EncryptionKeys.parse(self.payload_key, "chaos run key")))
                self.bkash = BkashSandboxAdmin(bkash_url, http)
                self.monetix = MonetixSandboxAdmin(monetix_url, http)
                self.bkash_customer = PatientBkashCustomer(
                    browser, patience=self.pacing.customer_window)
                self.monetix_customer = MonetixBkashCustomer(browser, monetix_url)
                plans = [self._plan(i) for i in range(self.count)]
                faults = self.faults = ProcessFaults(
                    self.seed, self.pacing, self.pacing.spread(self.count), self.server,
                    self.endpoint, self.workers, lambda kind: self.report.injected.update([kind]))
                done = asyncio.Event()
                self.t0 = time.monotonic()
                fault_task = asyncio.create_task(faults.run(done))
                try:
                    await asyncio.gather(*(self._drive(p) for p in plans))
                finally:
                    done.set()
                    await fault_task
                self.report.processes = faults.summary()
                await self._wait_until_all_closed(timedelta(seconds=self.budgets.end_wait))
                invariants = Invariants(self.client, self.bkash, self.monetix, self.report,
                                        every_token_wait=bool(self.pacing.token_budget_window))
                await invariants.check(self.payments)
                await RefundInvariants(self.client, self.bkash, self.monetix,
                                       self.report).check(self.payments,
                                                          budget=self.budgets.refunds)
                await self.tokens.check(self.bkash, self.report)
                invariants.process_faults_survived()
        finally:
            # Whatever started is stopped, a failed start-up included.
            for process in (*self.workers, self.endpoint, self.server):
                if process is not None:
                    await process.stop()
            if self.redis is not None:
                self.redis.stop()
        check_logs_for_secrets(logs, {"bKash app_secret": self.bkash_cfg.app_secret,
                                      "bKash password": self.bkash_cfg.password,
                                      "Monetix secret key": self.monetix_cfg.secret_key,
                                      "result-link secret": self.link_secret,
                                      "payload key": self.payload_key.split(":", 1)[1]},
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
                "PAYMENTS_LINK_SECRET": self.link_secret,
                "PAYMENTS_ENCRYPTION_KEYS": self.payload_key, "PAYMENTS_ENCRYPTION": "on",
                **({"BKASH_TOKEN_BUDGET_WINDOW_SECONDS": str(b.token_window_seconds)}
                   if self.pacing.token_budget_window else {})}

    def _host_env(self, env: dict[str, str], i: int) -> dict[str, str]:
        """Worker ``i``'s environment: one worker keeps the run's token file; several are hosts,
        each with a token cache file of its own, sharing the token and its budget on Redis."""
        if self.redis is None:
            return dict(env)
        host = self.workdir / "hosts" / f"worker-{i}"
        return {**env, "BKASH_TOKEN_STORE": self.redis.url,
                "BKASH_TOKEN_CACHE_FILE": str(host / "bkash-token.json")}

    def _plan(self, i: int) -> Payment:
        start_at = self.rng.uniform(0, self.pacing.spread(self.count))
        if i % 2 == 0:
            fault = self._deal("bkash", self.bkash_kinds)
            while fault == TOKEN_EXPIRED and not self.tokens.fits(start_at):
                fault = self._deal("bkash", self.bkash_kinds)  # this hour's expiry is dealt
            if fault == TOKEN_EXPIRED:
                self.tokens.plan(start_at)
            p = Payment("bkash", f"CHAOS-{self.seed}-{i}", fault,
                        self.rng.choice(BKASH_CUSTOMER), self.rng.choice(BKASH_DECISION))
            if fault == "bkash: customer closes the tab after approving" or \
                    fault.startswith("bkash: execute") or fault in TOKEN_FAULTS \
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
        p.start_at = start_at
        p.amount_poisha = (self.rng.randint(1, 900) * 100 if p.kind == "bkash"
                           else self.rng.randint(1, 50) * 1000)
        refundable = (p.customer, p.decision) == ("approve", "deliver") if p.kind == "bkash" \
            else p.customer in ("pay", "pay_more", "omit_account")
        p.refund = self.refund_deck.plan(i, p.kind, refundable)
        self.payments.append(p)
        self.report.injected[p.fault] += 1
        return p

    async def _drive(self, p: Payment) -> None:
        await asyncio.sleep(max(0.0, self.t0 + p.start_at - time.monotonic()))
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
        window = timedelta(seconds=self.pacing.customer_window)
        req = BkashPaymentRequest(invoice_number=p.key, amount_poisha=p.amount_poisha,
                                  callback_base_url=self.endpoint.url, approval_window=window,
                                  hold_deadline=timedelta(seconds=self.pacing.hold_deadline),
                                  provider_timeout=timedelta(seconds=PROVIDER_TIMEOUT),
                                  token_wait=timedelta(seconds=self.pacing.token_wait))
        if p.fault == TOKEN_EXPIRED:
            await self.tokens.expire_at_execute(self.bkash, p, self.report)
        asked = time.monotonic()

        def start():
            return retrying("start", lambda: start_payment(self.client, req,
                                                           task_queue=self.task_queue),
                            budget=self.budgets.start)
        url = await (self.tokens.spend_then_reject(self.bkash, p, start)
                     if p.fault == BUDGET_SPENT else start())
        p.started = True
        late = time.monotonic() - asked
        if late > self.pacing.customer_window - LATE_PAGE_MARGIN and p.customer != "abandon":
            # The approval window began at the create, before the page reached the customer: one
            # who approves now may approve after it ended (no money moves, the payment EXPIRED).
            # A customer kept waiting that long has left; counted in the report.
            p.notes.append(f"customer left: the bKash page came {late:.0f} s after the start")
            self.report.late_pages += 1
            p.customer = "abandon"
        if p.fault not in TOKEN_FAULTS:
            await self._fault(self.bkash, p, BKASH_FAULTS, {"paymentID": url.payment_id})
        try:
            if p.customer == "approve":
                await self.bkash_customer.approve_every_page(url.bkash_url)
            elif p.customer == "insufficient":
                await self.bkash_customer.approve_every_page(url.bkash_url, wallet="01823074817")
            elif p.customer == "cancel":
                await self.bkash_customer.cancel(url.bkash_url)
        except httpx.HTTPError as exc:
            p.notes.append(f"customer's browser: {type(exc).__name__}")  # like a closed tab
        if p.customer not in ("approve",) or p.decision == "none":
            return
        if not await self._reaches_authorized(req.workflow_id):
            return
        if p.decision == "deliver":
            await retrying("deliver", lambda: report_service_delivered(self.client, p.key),
                           budget=self.budgets.start)
        else:
            await retrying("fail", lambda: report_service_failed(self.client, p.key, "chaos"),
                           budget=self.budgets.start)

    async def _reaches_authorized(self, workflow_id: str) -> bool:
        # The stage search attribute is answered by the server alone, even while the worker is down.
        deadline = time.monotonic() + self.budgets.stage
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
            await asyncio.sleep(1.0)
        return False

    async def _drive_monetix(self, p: Payment) -> None:
        amount, window = p.amount_poisha, timedelta(seconds=self.pacing.customer_window)
        account = None if p.customer == "omit_account" else "01712345678"
        req = MonetixPurchaseRequest(
            sale={"payment_id": p.key, "amount_poisha": amount, "account_number": account,
                  "customer": {"id": "c-1", "ip_address": "203.0.113.7", "first_name": "A",
                               "last_name": "B", "email": "a@example.com"}},
            callback_base_url=self.endpoint.url,
            instructions_wait=timedelta(seconds=self.pacing.instructions_wait),
            transaction_id_window=window, clarification_window=window,
            final_callback_wait=timedelta(seconds=self.pacing.final_callback_wait),
            provider_timeout=timedelta(seconds=PROVIDER_TIMEOUT))
        if MONETIX_FAULTS[p.fault] and MONETIX_FAULTS[p.fault][0] in ("sale", "callback",
                                                                      "clarification"):
            await self._fault(self.monetix, p, MONETIX_FAULTS, {"payment_id": p.key})
        shown = await retrying("start", lambda: start_gate_purchase(self.client, req,
                                                                     task_queue=self.task_queue),
                               attempt_timeout=40, budget=self.budgets.start)
        p.started = True
        if shown.clarification_fields is not None and not shown.display_data:
            await retrying("clarify", lambda: provide_clarification(
                self.client, p.key, {"account": {"number": "01798765432"}}),
                budget=self.budgets.start)
        if p.customer == "never":
            return
        await self._wait_for_instructions(req.workflow_id)
        pay_amount = amount + 1000 if p.customer == "pay_more" else None
        wallet = "01823074817" if p.customer == "insufficient" else None
        trx = await self.monetix_customer.pay_in_bkash(p.key, amount=pay_amount, wallet=wallet)
        await retrying("txn", lambda: submit_transaction_id(self.client, p.key, trx),
                       budget=self.budgets.start)

    async def _wait_for_instructions(self, workflow_id: str) -> None:
        deadline = time.monotonic() + self.budgets.stage
        while time.monotonic() < deadline:
            try:
                desc = await self.client.get_workflow_handle(workflow_id).describe()
                if desc.typed_search_attributes.get(KEYS[SearchAttribute.PAYMENT_STAGE]) == "AWAITING_TRANSACTION_ID" \
                        or desc.close_time is not None:
                    return
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(1.0)

    async def _wait_until_all_closed(self, limit: timedelta) -> None:
        deadline = time.monotonic() + limit.total_seconds()
        # Refund ledgers stay open for their window (days): their refunds are checked instead; so
        # does a ledger's notification stream (it closes with the ledger). Every other workflow —
        # each payment and each payment's notification stream — must have closed.
        query = f'TaskQueue="{self.task_queue}" AND ExecutionStatus="Running"'
        stuck: list[str] = []
        while time.monotonic() < deadline:
            try:
                stuck = [wf.id async for wf in self.client.list_workflows(query)
                         if wf.workflow_type != "PaymentRefunds"
                         and not wf.id.startswith("notify:refunds-")]
                if not stuck:
                    return
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(1)
        for workflow_id in stuck:
            self.report.violations.append(f"{workflow_id} still running {limit} after the last "
                                          "payment was driven (stuck)")


async def run_chaos(seed: int, count: int, *, workdir: Path | None = None,
                    pacing: Pacing | None = None, refund_share: float = 0.5,
                    refund_kinds: list[str] | None = None) -> Report:
    """``pacing``: the start rate, the workers, the process faults' clocks and the windows
    (chaos.pacing.Pacing; its defaults are the long run's); ``refund_share``: the share of
    payments meant to end captured / paid that get refunds (0: no refunds); ``refund_kinds``: deal
    only these (``chaos.refunds.BKASH_REFUND_KINDS`` / ``MONETIX_REFUND_KINDS``; default all)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    chaos = Chaos(seed, count, workdir, pacing=pacing, refund_share=refund_share,
                  refund_kinds=refund_kinds)
    report = await chaos.run()
    report.write_json(workdir / "report.json", chaos)
    return report
