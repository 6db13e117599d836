"""The calls of the go-live pack, made with the project's own client (providers/bkash.py).

Payment 1 is the one bKash asks for: create, execute and query on ONE paymentID, then capture,
search, refund and refund status. Its execute answer is lost on purpose (traffic.py), because the
project calls Query Payment only then; bKash failed a merchant's UAT for querying successful
payments (production.md §2). Payment 2 is executed (no query) and voided. Then each error case
the target can produce, followed by what the project does next (the follow-up calls mirror
activities/bkash.py and workflows/bkash.py, which need Temporal to run themselves).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from contracts.bkash import BkashPaymentRequest, return_link_token
from contracts.money import format_bdt
from golive import codes
from golive.redact import mask_wallets
from golive.target import (
    DEBIT_BLOCKED_WALLET,
    INSUFFICIENT_BALANCE_WALLET,
    REGULAR_WALLET,
    GoliveError,
    Target,
)
from golive.traffic import Traffic
from providers.bkash import BkashClient, CreatedPayment, TokenManager
from providers.bkash_errors import (
    BkashAlreadySettled,
    BkashError,
    BkashInvalidState,
    BkashNoResponse,
)

MAIN, VOID = "payment 1", "payment 2"
AMOUNT_POISHA, VOID_AMOUNT_POISHA, REFUND_POISHA = 500_00, 300_00, 100_00


@dataclass
class ErrorCase:
    code: str | None  # the bKash code the case is about; None: the page's own outcome
    title: str
    scenario: str  # the traffic label of its calls
    note: str = ""
    project: str = ""  # what the project made of it, from the exception the client raised
    got_code: str | None = None
    show: tuple[str, ...] = ("execute", "query", "capture", "void", "refund", "refund_status",
                             "search")


@dataclass
class Run:
    target: Target
    traffic: Traffic
    main_payment_id: str = ""
    void_payment_id: str = ""
    main_trx_id: str = ""
    cases: list[ErrorCase] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # cases this target cannot produce
    # Values to scrub from the pack besides the secret fields: the result-link tokens in the
    # callbackURLs (a customer's result page, README "Result links").
    secrets: set[str] = field(default_factory=set)


async def run_all(target: Target) -> Run:
    traffic = Traffic(target.paths)
    run = Run(target, traffic)
    skew = [0.0]
    async with httpx.AsyncClient(timeout=target.timeout, event_hooks=traffic.hooks(),
                                 transport=traffic.transport()) as http, \
            httpx.AsyncClient(timeout=10) as admin_http:
        # As worker.py builds it, with a clock golive can move past minute 50, so that the pack
        # shows the refresh the worker makes then (providers/bkash_tokens.py).
        tokens = TokenManager(http, target.creds, target.paths, timeout=target.timeout,
                              refresh_after=target.refresh_after,
                              clock=lambda: time.time() + skew[0])
        client = BkashClient(http, target.creds, target.paths, timeout=target.timeout,
                             tokens=tokens)
        admin = None
        if target.sandbox_admin_url:
            from sandbox.bkash.admin import BkashSandboxAdmin

            admin = BkashSandboxAdmin(target.sandbox_admin_url, admin_http)
        calls = _Calls(run, client, skew, admin)
        await calls.main_payment()
        await calls.void_payment()
        await calls.error_cases()
    return run


class _Calls:
    def __init__(self, run: Run, client: BkashClient, skew: list[float], admin) -> None:
        self.run, self.client, self.skew, self.admin = run, client, skew, admin
        self.customer = run.target.customer
        self._stamp = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(2).upper()
        self._count = 0

    def _invoice(self) -> str:
        self._count += 1
        return f"GOLIVE-{self._stamp}-{self._count}"

    async def _create(self, amount_poisha: int, invoice: str | None = None) -> CreatedPayment:
        invoice = invoice or self._invoice()
        target = self.run.target
        # The callbackURL exactly as activities/bkash.py builds it for the workflow of this invoice.
        req = BkashPaymentRequest(invoice_number=invoice, amount_poisha=amount_poisha,
                                  callback_base_url=target.callback_base_url)
        token = return_link_token(target.link_secret, req.workflow_id)
        self.run.secrets.add(token)
        callback = f"{req.callback_url}/{token}"
        # payerReference as workflows/bkash.py derives it: no personal data, the invoice.
        return await self.client.create_payment(
            amount_poisha=amount_poisha, invoice_number=invoice, payer_reference=f"inv-{invoice}",
            callback_url=callback)

    async def _approved(self, amount_poisha: int, wallet: str, why: str) -> CreatedPayment:
        created = await self._create(amount_poisha)
        status, _ = await self.customer.approve(created.bkash_url, wallet, why)
        if status != "success":
            raise GoliveError(f"payment {created.payment_id}: bKash's page sent the customer back "
                              f"with status={status}, not success; approve it on the page")
        return created

    async def main_payment(self) -> None:
        run = self.run
        run.traffic.scenario = MAIN
        created = await self._approved(AMOUNT_POISHA, REGULAR_WALLET,
                                       "payment 1 (create, execute, query, capture, refund): "
                                       "approve it")
        pid = run.main_payment_id = created.payment_id
        run.traffic.lose_answer("execute", pid)
        try:
            await self.client.execute_payment(pid)
            raise GoliveError(f"payment {pid}: execute's answer was meant to be lost, yet arrived")
        except BkashNoResponse:
            pass  # the only case in which the project queries (workflows/bkash.py EXECUTE_ONCE)
        queried = await self.client.query_payment(pid)
        if queried.transaction_status != "Authorized":
            raise GoliveError(f"payment {pid}: Query Payment reports {queried.transaction_status!r}"
                              ", not Authorized: did the customer approve on bKash's page?")
        # The worker refreshes its token at minute 50; golive's token clock jumps there.
        self.skew[0] = run.target.refresh_after + 1
        captured = await self.client.capture_payment(pid)
        run.main_trx_id = captured.trx_id or queried.trx_id or ""
        await self.client.search_transaction(run.main_trx_id)
        await self.client.refund_payment(payment_id=pid, trx_id=run.main_trx_id,
                                         amount_poisha=REFUND_POISHA, sku="golive-sku-1",
                                         reason="go-live test partial refund")
        await self.client.refund_status(payment_id=pid, trx_id=run.main_trx_id)

    async def void_payment(self) -> None:
        run = self.run
        run.traffic.scenario = VOID
        created = await self._approved(VOID_AMOUNT_POISHA, REGULAR_WALLET,
                                       "payment 2 (to be voided): approve it")
        run.void_payment_id = created.payment_id
        await self.client.execute_payment(created.payment_id)  # answered: no query
        await self.client.void_payment(created.payment_id)

    async def error_cases(self) -> None:
        for case, action in self._cases():
            self.run.traffic.scenario = case.scenario
            if action is None:
                self.run.skipped.append(f"{case.title}: needs the local sandbox's fault injection")
                continue
            try:
                case.project = await action(case)
            except BkashError as err:
                case.got_code, case.project = err.code, codes.handled(err)
            self.run.cases.append(case)

    def _cases(self) -> list[tuple[ErrorCase, Callable[[ErrorCase], Awaitable[str]] | None]]:
        local = self.admin is not None
        ins, blk = mask_wallets(INSUFFICIENT_BALANCE_WALLET), mask_wallets(DEBIT_BLOCKED_WALLET)
        return [
            (ErrorCase("2023", "Insufficient Balance (2023): execute", "insufficient balance",
                       f"a new payment, approved with bKash's insufficient-balance test wallet "
                       f"{ins}"), self._declined_wallet(INSUFFICIENT_BALANCE_WALLET)),
            (ErrorCase("2038", "Debit party blocked (2038): execute", "debit block",
                       f"a new payment, approved with bKash's debit-block test wallet {blk}"),
             self._declined_wallet(DEBIT_BLOCKED_WALLET)),
            (ErrorCase(None, "Wrong PIN on bKash's page (three attempts)", "wrong pin page",
                       "a new payment; the customer enters a wrong PIN three times, bKash's page "
                       "ends the payment and sends the browser back with status=failure"),
             self._wrong_pin_on_page),
            (ErrorCase("2014", "Wrong PIN (2014): execute", "wrong pin execute",
                       "a new, approved payment whose execute the local sandbox answers with "
                       "bKash's 2014 (its fault injection: error_code)"),
             self._injected_execute_error("2014") if local else None),
            (ErrorCase("2119", "Duplicate capture (2119): capture of the captured payment 1",
                       "duplicate capture", "Capture sent again for payment 1"),
             self._settled_again("capture", MAIN)),
            (ErrorCase("2119", "Duplicate void (2119): void of the voided payment 2",
                       "duplicate void", "Void sent again for payment 2"),
             self._settled_again("void", VOID)),
            (ErrorCase("2062", "Execute of a completed payment (2062)", "execute again",
                       "Execute sent again for payment 1 (captured)"),
             self._settled_again("execute", MAIN)),
            (ErrorCase("2060", "Execute before the customer approved (2060)", "execute early",
                       "a new payment, executed before anyone acted on bKash's page (a forged "
                       "or early return)"), self._execute_early),
            (ErrorCase("2002", "Invalid Payment ID (2002): query of an unknown paymentID",
                       "unknown payment", "a paymentID bKash never issued"),
             self._unknown_payment),
            (ErrorCase("2029", "Duplicate invoice (2029): create for payment 1's invoice",
                       "duplicate invoice", "payment 1's merchantInvoiceNumber, already paid",
                       show=("create",)), self._duplicate_invoice),
            (ErrorCase("2072", "Refund amount not valid (2072): more than is left",
                       "refund over limit", "payment 1 holds 400.00 refundable; 1000.00 asked"),
             self._refund_too_much),
            (ErrorCase("2074", "Refund of a voided payment (2074)", "refund voided",
                       "a refund of payment 2, which was voided"), self._refund_voided),
            (ErrorCase("2003", "Process failed (2003): capture, then the retry", "retried capture",
                       "a new, authorized payment whose first capture the local sandbox answers "
                       "with bKash's 2003 (fault injection)", show=("capture", "query")),
             self._retried_capture if local else None),
        ]

    def _declined_wallet(self, wallet: str) -> Callable[[ErrorCase], Awaitable[str]]:
        async def action(case: ErrorCase) -> str:
            created = await self._approved(AMOUNT_POISHA, wallet,
                                           f"{case.title}: approve it with wallet {wallet}")
            await self.client.execute_payment(created.payment_id)
            return "execute succeeded: bKash did not decline this wallet"
        return action

    async def _wrong_pin_on_page(self, case: ErrorCase) -> str:
        created = await self._create(AMOUNT_POISHA)
        status, redirect = await self.customer.fail_pin(
            created.bkash_url, f"{case.title}: enter a wrong PIN three times")
        if redirect:
            case.note += f"\n  bKash's redirect: GET {redirect}"
        # The redirect is unsigned: the project confirms it with bKash and never executes
        # (workflows/bkash.py::_confirm_unsuccessful_return).
        queried = await self.client.query_payment(created.payment_id)
        if queried.transaction_status == "Initiated":
            return (f"return status={status}, Query Payment reports Initiated → declined, no "
                    "retry: the payment is DECLINED, Execute is never sent, no money moved")
        return f"return status={status}, Query Payment reports {queried.transaction_status}"

    def _injected_execute_error(self, code: str) -> Callable[[ErrorCase], Awaitable[str]]:
        async def action(case: ErrorCase) -> str:
            created = await self._approved(AMOUNT_POISHA, REGULAR_WALLET, case.title)
            await self.admin.add_fault("execute", "error_code", code=code,
                                       match={"paymentID": created.payment_id})
            await self.client.execute_payment(created.payment_id)
            return "execute succeeded: the fault did not fire"
        return action

    def _settled_again(self, operation: str,
                       scenario: str) -> Callable[[ErrorCase], Awaitable[str]]:
        async def action(case: ErrorCase) -> str:
            pid = self.run.main_payment_id if scenario == MAIN else self.run.void_payment_id
            call = getattr(self.client, f"{operation}_payment")
            try:
                await call(pid)
            except (BkashAlreadySettled, BkashInvalidState) as err:
                case.got_code = err.code
                # activities/bkash.py::_settle and workflows/bkash.py: ask bKash, follow its answer.
                queried = await self.client.query_payment(pid)
                return (f"{codes.handled(err)}; Query Payment reports "
                        f"{queried.transaction_status}, trxID {queried.trx_id}: the payment keeps "
                        f"that state, nothing moves twice")
            return f"{operation} succeeded again"
        return action

    async def _execute_early(self, case: ErrorCase) -> str:
        created = await self._create(AMOUNT_POISHA)
        try:
            await self.client.execute_payment(created.payment_id)
        except BkashInvalidState as err:
            case.got_code = err.code
            return (f"{codes.handled(err)}: the payment stays AWAITING_APPROVAL (the bkashURL "
                    "still works) and EXPIRES when the approval window ends; no Query Payment")
        return "execute succeeded before approval"

    async def _unknown_payment(self, case: ErrorCase) -> str:
        unknown = f"TR0011GOLIVE{secrets.token_hex(4).upper()}"
        queried = await self.client.query_payment(unknown)
        return f"Query Payment answered {queried.transaction_status} for a made-up paymentID"

    async def _duplicate_invoice(self, case: ErrorCase) -> str:
        invoice = f"GOLIVE-{self._stamp}-1"  # payment 1's
        created = await self._create(AMOUNT_POISHA, invoice)
        return f"create succeeded: bKash issued {created.payment_id} for a paid invoice"

    async def _refund_too_much(self, case: ErrorCase) -> str:
        await self.client.refund_payment(payment_id=self.run.main_payment_id,
                                         trx_id=self.run.main_trx_id, amount_poisha=1000_00,
                                         sku="golive-sku-1", reason="go-live test excess refund")
        return "refund succeeded"

    async def _refund_voided(self, case: ErrorCase) -> str:
        executed = self.run.traffic.of(VOID, "execute")
        trx = (executed[0].response_body or {}).get("trxID", "") if executed else ""
        await self.client.refund_payment(payment_id=self.run.void_payment_id, trx_id=trx,
                                         amount_poisha=REFUND_POISHA, sku="golive-sku-2",
                                         reason="go-live test refund of a void")
        return "refund succeeded"

    async def _retried_capture(self, case: ErrorCase) -> str:
        created = await self._approved(AMOUNT_POISHA, REGULAR_WALLET, case.title)
        pid = created.payment_id
        await self.client.execute_payment(pid)
        await self.admin.add_fault("capture", "error_code", code="2003", match={"paymentID": pid})
        try:
            await self.client.capture_payment(pid)
        except BkashError as err:
            case.got_code = err.code
            first = codes.handled(err)
        else:
            return "capture succeeded: the fault did not fire"
        # Attempt 2 of the capture activity: ask bKash first, send only while still Authorized.
        queried = await self.client.query_payment(pid)
        if queried.transaction_status != "Authorized":
            return f"{first}; the retry's Query Payment reports {queried.transaction_status}"
        captured = await self.client.capture_payment(pid)
        return (f"{first}; the retry asks Query Payment first (Authorized), then captures once: "
                f"{captured.transaction_status}, trxID {captured.trx_id}, "
                f"{format_bdt(AMOUNT_POISHA)} BDT")
