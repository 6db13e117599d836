"""The sandbox's memory and bKash's business rules: payments, their state machine (reference §10.2)
and the ledger of money movements. No HTTP here: callers get a bKash body or a BkashError."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from sandbox.common.faults import FaultBook

from .calls import CallCounter
from .codes import BkashError
from .config import BkashSandboxConfig
from .faults import Operation, Target
from .formats import (bkash_time, format_poisha, new_page_hash, new_payment_id, new_signature,
                      new_trx_id, parse_amount)
from .tokens import TokenAuthority

# Sandbox test wallets whose execute is declined (§13, the 2038 text is [OBS] §6).
DECLINING_WALLETS = {"01823074817": "2023", "01823074818": "2038"}
# "Can be refund a transaction which is no older than 15 days" (§9, plugin docblock).
REFUND_WINDOW_SECONDS = 15 * 24 * 3600
_MANDATORY = ("mode", "payerReference", "callbackURL", "amount", "currency", "intent",
              "merchantInvoiceNumber")


class Status(StrEnum):
    INITIATED = "Initiated"
    AUTHORIZED = "Authorized"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    FAILED = "Failed"


class PageOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCEL = "cancel"


class LedgerKind(StrEnum):
    AUTHORIZE = "AUTHORIZE"
    SALE = "SALE"
    CAPTURE = "CAPTURE"
    VOID = "VOID"
    EXPIRE = "EXPIRE"
    REFUND = "REFUND"


@dataclass
class Refund:
    trx_id: str
    amount: str
    amount_poisha: int
    at: float


@dataclass
class Payment:
    payment_id: str
    mode: str
    intent: str
    amount: str  # exactly as the merchant sent it: bKash echoes "12" as "12" (§4.2)
    amount_poisha: int
    currency: str
    merchant_invoice: str
    payer_reference: str
    callback_url: str
    signature: str
    page_hash: str
    created_at: float
    status: Status = Status.INITIATED
    page_outcome: PageOutcome | None = None
    page_step: str = "wallet"
    wallet: str | None = None
    otp_failures: int = 0
    pin_failures: int = 0
    trx_id: str | None = None
    executed_at: float | None = None
    completed_at: float | None = None
    updated_at: float | None = None
    cancelled_by: str | None = None  # "void" or "expire"
    failure_code: str | None = None
    execute_count: int = 0
    capture_count: int = 0
    void_count: int = 0
    refunds: list[Refund] = field(default_factory=list)

    @property
    def refunded_poisha(self) -> int:
        return sum(r.amount_poisha for r in self.refunds)

    def callback_with(self, status: str) -> str:
        """callbackURL with paymentID, status and signature appended; bKash appends with & when the
        merchant's URL already has a query string (§4.1) and the signature is one per payment (§4.2)."""
        url = self.callback_url
        separator = "" if url.endswith(("?", "&")) else ("&" if "?" in url else "?")
        return f"{url}{separator}paymentID={self.payment_id}&status={status}&signature={self.signature}"


@dataclass
class LedgerEntry:
    seq: int
    kind: LedgerKind
    payment_id: str
    merchant_invoice: str
    amount_poisha: int
    trx_id: str | None
    at: float
    original_trx_id: str | None = None

    def to_dict(self) -> dict:
        entry = {"seq": self.seq, "kind": self.kind.value, "payment_id": self.payment_id,
                 "merchant_invoice": self.merchant_invoice,
                 "amount": format_poisha(self.amount_poisha), "amount_poisha": self.amount_poisha,
                 "trx_id": self.trx_id, "at": self.at}
        if self.original_trx_id is not None:
            entry["original_trx_id"] = self.original_trx_id
        return entry


def _ok(**fields: object) -> dict:
    return {"statusCode": "0000", "statusMessage": "Successful", **fields}


class BkashSandbox:
    def __init__(self, config: BkashSandboxConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.tokens = TokenAuthority(config, clock)
        self.faults = FaultBook()
        self.reset()

    def reset(self) -> None:
        self.tokens.reset()
        self.faults.clear()
        self.calls = CallCounter()
        self.payments: dict[str, Payment] = {}
        self.ledger: list[LedgerEntry] = []

    # --- lookups --------------------------------------------------------------------------

    def find(self, payment_id: object) -> Payment | None:
        self.expire_holds()
        return self.payments.get(payment_id) if isinstance(payment_id, str) else None

    def find_by_trx(self, trx_id: object) -> Payment | None:
        self.expire_holds()
        return next((p for p in self.payments.values() if p.trx_id and p.trx_id == trx_id), None)

    def by_invoice(self, invoice: str) -> list[Payment]:
        self.expire_holds()
        return [p for p in self.payments.values() if p.merchant_invoice == invoice]

    def target(self, operation: Operation, body: dict | None) -> Target:
        """What a request is about, for matching faults to one test's payment."""
        body = body or {}
        if operation is Operation.CREATE:
            invoice = body.get("merchantInvoiceNumber")
            return Target(invoice=invoice if isinstance(invoice, str) else None)
        if operation is Operation.SEARCH:
            payment = self.find_by_trx(body.get("trxID"))
        else:
            payment = self.find(body.get("paymentID"))
        return Target(payment.payment_id, payment.merchant_invoice) if payment else Target()

    def _payment(self, body: dict) -> Payment:
        payment = self.find(body.get("paymentID"))
        if payment is None:
            # [OBS] refund with paymentID null → 2002 (§9); used for every paymentID lookup.
            raise BkashError("2002")
        return payment

    def _record(self, kind: LedgerKind, payment: Payment, amount_poisha: int, trx_id: str | None,
                at: float, original_trx_id: str | None = None) -> None:
        self.ledger.append(LedgerEntry(len(self.ledger) + 1, kind, payment.payment_id,
                                       payment.merchant_invoice, amount_poisha, trx_id, at,
                                       original_trx_id))

    def expire_holds(self) -> None:
        """Authorizations older than the configured hold lapse (an [INF] knob, §8.4). Checked
        lazily on every access so an injected clock is enough to drive it."""
        hold = self.config.authorization_hold_seconds
        if hold is None:
            return
        now = self.clock()
        for p in self.payments.values():
            if p.status is Status.AUTHORIZED and p.executed_at is not None and p.executed_at + hold <= now:
                expired_at = p.executed_at + hold
                p.status, p.cancelled_by, p.updated_at = Status.CANCELLED, "expire", expired_at
                self._record(LedgerKind.EXPIRE, p, p.amount_poisha, p.trx_id, expired_at)

    # --- create ---------------------------------------------------------------------------

    def create_payment(self, body: dict, page_base: str) -> dict:
        # One code per rule, in the order of §4.1/§11; absent mandatory fields first (2065).
        if any(body.get(name) is None for name in _MANDATORY) or not str(body["payerReference"]).strip():
            raise BkashError("2065")
        if body["mode"] != "0011":
            # Agreement modes 0000/0001 are outside Auth & Capture; this sandbox has no agreements.
            raise BkashError("2063")
        amount_poisha = parse_amount(body["amount"])
        if amount_poisha is None:
            raise BkashError("2006")
        if body["currency"] != "BDT":
            raise BkashError("2007")
        if body["intent"] not in ("sale", "authorization"):
            raise BkashError("2008")
        invoice = body["merchantInvoiceNumber"]
        # "max 255 chars, excludes < > &" (§4.1, unverified portal convention).
        if not isinstance(invoice, str) or not 1 <= len(invoice) <= 255 or any(c in invoice for c in "<>&"):
            raise BkashError("2031")
        if not _is_absolute_http_url(body["callbackURL"]):
            raise BkashError("2049")
        if self._settled_payment_for(invoice) is not None:
            raise BkashError("2029")

        now = self.clock()
        payment_id = new_payment_id("0011", now)
        while payment_id in self.payments:
            payment_id = new_payment_id("0011", now)
        p = Payment(payment_id=payment_id, mode="0011", intent=body["intent"], amount=body["amount"],
                    amount_poisha=amount_poisha, currency="BDT", merchant_invoice=invoice,
                    payer_reference=str(body["payerReference"]), callback_url=body["callbackURL"],
                    signature=new_signature(), page_hash=new_page_hash(now), created_at=now)
        self.payments[payment_id] = p
        # 2024-26 shape of the hosted page URL; the trailing "/" after the version is real (§1).
        bkash_url = (f"{page_base}/checkout/?paymentId={payment_id}&hash={p.page_hash}"
                     f"&mode=0011&apiVersion={self.config.api_version}/")
        # statusCode/statusMessage last, as in 2025-26 responses (§4.2).
        return {"paymentID": payment_id, "bkashURL": bkash_url, "callbackURL": p.callback_url,
                "successCallbackURL": p.callback_with("success"),
                "failureCallbackURL": p.callback_with("failure"),
                "cancelledCallbackURL": p.callback_with("cancel"),
                "amount": p.amount, "intent": p.intent, "currency": p.currency,
                "paymentCreateTime": bkash_time(now), "transactionStatus": "Initiated",
                "merchantInvoiceNumber": invoice, "statusCode": "0000", "statusMessage": "Successful"}

    def _settled_payment_for(self, invoice: str) -> Payment | None:
        return next((p for p in self.by_invoice(invoice)
                     if p.status in (Status.AUTHORIZED, Status.COMPLETED)), None)

    # --- the hosted page's verdict ----------------------------------------------------------

    def end_on_page(self, p: Payment, outcome: PageOutcome) -> None:
        # Query keeps saying "Initiated" after this (§7, §10.2): only execute moves money.
        p.page_outcome = outcome
        p.page_step = "done"
        p.updated_at = self.clock()

    # --- execute --------------------------------------------------------------------------

    def execute_payment(self, body: dict) -> dict:
        p = self._payment(body)
        p.execute_count += 1
        if p.trx_id is not None:
            raise BkashError("2062")  # [OBS] a repeated execute (§6), whatever happened since
        if p.status is Status.FAILED:
            raise BkashError("2056")
        if p.page_outcome is None:
            raise BkashError("2060")  # the customer has not finished the page (§6, §11)
        if p.page_outcome is not PageOutcome.SUCCESS:
            raise BkashError("2056")
        other = self._settled_payment_for(p.merchant_invoice)
        if other is not None and other is not p:
            # [OBS] execute answered 2029 "Duplicate for All Transactions" (§6).
            raise BkashError("2029")
        now = self.clock()
        if p.wallet in DECLINING_WALLETS:
            p.status, p.failure_code, p.updated_at = Status.FAILED, DECLINING_WALLETS[p.wallet], now
            raise BkashError(p.failure_code)
        p.trx_id = self._new_trx_id()
        p.executed_at = p.updated_at = now
        if p.intent == "authorization":
            p.status = Status.AUTHORIZED
            self._record(LedgerKind.AUTHORIZE, p, p.amount_poisha, p.trx_id, now)
        else:
            p.status, p.completed_at = Status.COMPLETED, now
            self._record(LedgerKind.SALE, p, p.amount_poisha, p.trx_id, now)
        return _ok(paymentID=p.payment_id, payerReference=p.payer_reference,
                   customerMsisdn=p.wallet, trxID=p.trx_id, amount=p.amount,
                   transactionStatus=p.status.value, paymentExecuteTime=bkash_time(now),
                   currency=p.currency, intent=p.intent, merchantInvoiceNumber=p.merchant_invoice)

    def _new_trx_id(self) -> str:
        taken = {p.trx_id for p in self.payments.values()} | {
            r.trx_id for p in self.payments.values() for r in p.refunds}
        trx_id = new_trx_id()
        while trx_id in taken:
            trx_id = new_trx_id()
        return trx_id

    # --- query ----------------------------------------------------------------------------

    def query_status(self, p: Payment) -> str:
        if p.status is Status.INITIATED and self.config.query_reports_page_outcome:
            return {PageOutcome.CANCEL: "Cancelled", PageOutcome.FAILURE: "Failed"}.get(
                p.page_outcome, "Initiated")
        return p.status.value

    def query_payment(self, body: dict) -> dict:
        p = self._payment(body)
        # Key order and the merchantInvoice spelling follow the [OBS] sample (§7); an unexecuted
        # payment has neither paymentExecuteTime nor trxID.
        answer: dict = {"paymentID": p.payment_id, "mode": p.mode,
                        "paymentCreateTime": bkash_time(p.created_at)}
        if p.executed_at is not None:
            answer["paymentExecuteTime"] = bkash_time(p.executed_at)
        answer.update(amount=p.amount, currency=p.currency, intent=p.intent,
                      merchantInvoice=p.merchant_invoice)
        if p.trx_id is not None:
            answer["trxID"] = p.trx_id
        answer.update(transactionStatus=self.query_status(p), verificationStatus="Complete",
                      statusCode="0000", statusMessage="Successful", payerReference=p.payer_reference)
        return answer

    # --- capture and void -----------------------------------------------------------------
    # The codes for the wrong state are the reference's suggested mapping (§8.4 [INF]).

    def capture_payment(self, body: dict) -> dict:
        p = self._payment(body)
        p.capture_count += 1
        if p.status is Status.COMPLETED:
            raise BkashError("2119")
        if p.status is Status.CANCELLED:
            raise BkashError("2069")
        if p.status is not Status.AUTHORIZED:
            raise BkashError("2056")
        now = self.clock()
        p.status, p.completed_at, p.updated_at = Status.COMPLETED, now, now
        self._record(LedgerKind.CAPTURE, p, p.amount_poisha, p.trx_id, now)
        return self._settle_answer(p)

    def void_payment(self, body: dict) -> dict:
        p = self._payment(body)
        p.void_count += 1
        if p.status is Status.CANCELLED:
            raise BkashError("2119")
        if p.status is Status.COMPLETED:
            raise BkashError("2068")
        if p.status is not Status.AUTHORIZED:
            raise BkashError("2056")
        now = self.clock()
        p.status, p.cancelled_by, p.updated_at = Status.CANCELLED, "void", now
        self._record(LedgerKind.VOID, p, p.amount_poisha, p.trx_id, now)
        return self._settle_answer(p)

    def _settle_answer(self, p: Payment) -> dict:
        # Fields of the [DOC] void page (§8.3); void answers "Cancelled" as the official plugin expects.
        assert p.updated_at is not None
        return _ok(paymentID=p.payment_id, createTime=bkash_time(p.created_at),
                   updateTime=bkash_time(p.updated_at), trxID=p.trx_id,
                   transactionStatus=p.status.value)

    # --- search and refund ----------------------------------------------------------------

    def search_transaction(self, body: dict) -> dict:
        if body.get("trxID") is None:
            raise BkashError("2065")
        p = self.find_by_trx(body["trxID"])
        if p is None:
            raise BkashError("2033")
        assert p.executed_at is not None and p.wallet is not None
        return {"trxID": p.trx_id, "initiationTime": bkash_time(p.executed_at),
                "completedTime": bkash_time(p.completed_at or p.executed_at),
                "transactionType": "bKash Tokenized Checkout via API",
                # Search reports the wallet with the country prefix, execute without (§4.3).
                "customerMsisdn": "88" + p.wallet, "transactionStatus": p.status.value,
                "amount": p.amount, "currency": p.currency, "organizationShortCode": "50011",
                "statusCode": "0000", "statusMessage": "Successful"}

    def refund(self, body: dict) -> dict:
        # Refund and refund status share one URL; a body without amount asks for the status (§2 #10).
        if "amount" not in body:
            return self.refund_status(body)
        p = self._refundable(body)
        now = self.clock()
        assert p.completed_at is not None
        if now - p.completed_at > REFUND_WINDOW_SECONDS:
            raise BkashError("2071")
        poisha = parse_amount(body["amount"])
        if poisha is None or poisha > p.amount_poisha - p.refunded_poisha:
            raise BkashError("2072")  # [OBS] an amount above the original (§9)
        if not body.get("sku"):
            raise BkashError("2073")  # [3P] a missing sku gives "Invalid SKU" (§9)
        refund = Refund(self._new_trx_id(), body["amount"], poisha, now)
        p.refunds.append(refund)
        self._record(LedgerKind.REFUND, p, poisha, refund.trx_id, now, original_trx_id=p.trx_id)
        return self._refund_answer(p, refund)

    def refund_status(self, body: dict) -> dict:
        p = self._refundable(body)
        if not p.refunds:
            raise BkashError("2033")  # [INF] the answer for "no refund yet" is not in any source
        return self._refund_answer(p, p.refunds[-1])

    def _refundable(self, body: dict) -> Payment:
        p = self._payment(body)
        if not body.get("trxID"):
            raise BkashError("2065")
        if body["trxID"] != p.trx_id:
            raise BkashError("2077")
        if p.status is not Status.COMPLETED:
            # Only a completed sale or capture holds the merchant's money (§8.4, §10.2).
            raise BkashError("2074" if p.status is Status.CANCELLED else "2127")
        return p

    @staticmethod
    def _refund_answer(p: Payment, refund: Refund) -> dict:
        return _ok(originalTrxID=p.trx_id, refundTrxID=refund.trx_id, transactionStatus="Completed",
                   amount=refund.amount, currency=p.currency, charge="0.00",
                   completedTime=bkash_time(refund.at))

    # --- admin views ----------------------------------------------------------------------

    def payment_view(self, p: Payment) -> dict:
        return {"payment_id": p.payment_id, "merchant_invoice": p.merchant_invoice,
                "intent": p.intent, "mode": p.mode, "amount": format_poisha(p.amount_poisha),
                "amount_poisha": p.amount_poisha, "amount_as_sent": p.amount, "currency": p.currency,
                "payer_reference": p.payer_reference, "callback_url": p.callback_url,
                "status": p.status.value, "query_status": self.query_status(p),
                "page_outcome": p.page_outcome.value if p.page_outcome else None,
                "page_step": p.page_step, "wallet": p.wallet, "otp_failures": p.otp_failures,
                "pin_failures": p.pin_failures, "trx_id": p.trx_id, "signature": p.signature,
                "cancelled_by": p.cancelled_by, "failure_code": p.failure_code,
                "execute_count": p.execute_count, "capture_count": p.capture_count,
                "void_count": p.void_count, "refunded_poisha": p.refunded_poisha,
                "refunds": [{"trx_id": r.trx_id, "amount": format_poisha(r.amount_poisha),
                             "amount_poisha": r.amount_poisha, "at": r.at} for r in p.refunds],
                "created_at": p.created_at, "executed_at": p.executed_at,
                "completed_at": p.completed_at, "updated_at": p.updated_at}

    def ledger_view(self, payment_id: str | None = None, invoice: str | None = None) -> list[dict]:
        self.expire_holds()
        return [e.to_dict() for e in self.ledger
                if (payment_id is None or e.payment_id == payment_id)
                and (invoice is None or e.merchant_invoice == invoice)]


def _is_absolute_http_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
