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
from .formats import (bkash_time, format_poisha, json_text, new_page_hash, new_payment_id,
                      new_signature, new_trx_id, parse_amount)
from .tokens import TokenAuthority

# Sandbox test wallets whose execute is declined (§13, the 2038 text is [OBS] §6).
DECLINING_WALLETS = {"01823074817": "2023", "01823074818": "2038"}
_MANDATORY = ("mode", "payerReference", "callbackURL", "amount", "currency", "intent",
              "merchantInvoiceNumber")
# "bKash Tokenized Checkout via API": the [OBS] 2021 search answer for a payment (§9); a refund's is
# in refunds.py.
_PAYMENT_TRX_TYPE = "bKash Tokenized Checkout via API"
# "Customer": payerType in the 2025 execute answers (see execute_payment).
_PAYER_TYPE = "Customer"


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
    """One refund of a payment (its rules are refunds.py's)."""

    trx_id: str  # the refund's own trxID: refundTrxID (v1) / refundTrxId (v2)
    amount: str  # as the merchant sent it, echoed like the payment's amount
    amount_poisha: int
    at: float
    sku: str = ""
    reason: str = ""
    api: str = "v1"  # the refund API that made it: v1 or v2
    repeats: int = 0  # refunds answered with this one again ([OBS], see refunds.py)


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
        if self.original_trx_id is not None:  # REFUND: the payment's trxID, and the refund's own
            entry["original_trx_id"] = self.original_trx_id
            entry["refund_trx_id"] = self.trx_id
        return entry


def _ok(**fields: object) -> dict:
    return {"statusCode": "0000", "statusMessage": "Successful", **fields}


class BkashSandbox:
    def __init__(self, config: BkashSandboxConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.tokens = TokenAuthority(config, clock)
        self.faults = FaultBook()
        # refunds.py builds on this module's payments and ledger, hence imported here, not above.
        from .refunds import RefundDesk
        self.refund_desk = RefundDesk(self)
        self.reset()

    def reset(self) -> None:
        self.tokens.reset()
        self.faults.clear()
        self.refund_desk.reset()
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

    def find_refund_by_trx(self, trx_id: object) -> tuple[Payment, Refund] | None:
        self.expire_holds()
        return next(((p, r) for p in self.payments.values() for r in p.refunds
                     if r.trx_id == trx_id), None)

    def by_invoice(self, invoice: str) -> list[Payment]:
        self.expire_holds()
        return [p for p in self.payments.values() if p.merchant_invoice == invoice]

    def target(self, operation: Operation, body: dict | None) -> Target:
        """What a request is about, for matching faults to one test's payment."""
        body = body or {}
        if operation is Operation.CREATE:
            return Target(invoice=json_text(body.get("merchantInvoiceNumber")))
        if operation is Operation.SEARCH:
            refund = self.find_refund_by_trx(body.get("trxID"))
            payment = refund[0] if refund else self.find_by_trx(body.get("trxID"))
        elif operation in (Operation.REFUND, Operation.REFUND_STATUS):
            # v1 spells it paymentID, v2 paymentId (§9).
            payment = self.find(body.get("paymentID") or body.get("paymentId"))
        else:
            payment = self.find(body.get("paymentID"))
        return Target(payment.payment_id, payment.merchant_invoice) if payment else Target()

    def _payment(self, body: dict) -> Payment:
        payment = self.find(body.get("paymentID"))
        if payment is None:
            # [OBS] refund with paymentID null → 2002 (§9); used for every paymentID lookup.
            raise BkashError("2002")
        return payment

    def record(self, kind: LedgerKind, payment: Payment, amount_poisha: int, trx_id: str | None,
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
                self.record(LedgerKind.EXPIRE, p, p.amount_poisha, p.trx_id, expired_at)

    # --- create ---------------------------------------------------------------------------

    def create_payment(self, body: dict, page_base: str) -> dict:
        # One code per rule, in the order of §4.1/§11. The mode comes first: it decides which fields
        # are mandatory (an agreement create, mode 0000, has no amount, currency, intent or invoice:
        # pybkash's create_agreement sends only mode, callbackURL and payerReference), so a mode
        # this sandbox does not serve is 2063, not 2065 for fields that mode never needs.
        if body.get("mode") is None:
            raise BkashError("2065")
        if body["mode"] != "0011":
            # Agreement modes 0000/0001 are outside Auth & Capture; this sandbox has no agreements.
            raise BkashError("2063")
        if any(body.get(name) is None for name in _MANDATORY):
            raise BkashError("2065")
        # String fields take a JSON number as its text, all alike (formats.json_text): amount,
        # payerReference and merchantInvoiceNumber. "max 255 chars, excludes < > &" is stated for
        # merchantInvoiceNumber (§4.1, portal convention via api-evangelist) and for payerReference
        # (pybkash docs/detailed_usage.md: "Max length is 255 characters. Special characters "<",
        # ">" and "&" are not allowed."); each gets its own code (2048, 2031).
        payer_reference = json_text(body["payerReference"])
        if payer_reference is not None and not payer_reference.strip():
            raise BkashError("2065")
        if not _is_reference(payer_reference):
            raise BkashError("2048")
        amount = parse_amount(body["amount"])
        if amount is None:
            raise BkashError("2006")
        amount_poisha, amount_text = amount
        if body["currency"] != "BDT":
            raise BkashError("2007")
        if body["intent"] not in ("sale", "authorization"):
            raise BkashError("2008")
        invoice = json_text(body["merchantInvoiceNumber"])
        if not _is_reference(invoice):
            raise BkashError("2031")
        assert payer_reference is not None and invoice is not None
        if not _is_absolute_http_url(body["callbackURL"]):
            raise BkashError("2049")
        if self._settled_payment_for(invoice) is not None:
            raise BkashError("2029")

        now = self.clock()
        payment_id = new_payment_id("0011", now)
        while payment_id in self.payments:
            payment_id = new_payment_id("0011", now)
        p = Payment(payment_id=payment_id, mode="0011", intent=body["intent"], amount=amount_text,
                    amount_poisha=amount_poisha, currency="BDT", merchant_invoice=invoice,
                    payer_reference=payer_reference, callback_url=body["callbackURL"],
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
            # Executed before. A completed payment (a sale, or a captured authorization) answers
            # [OBS] 2062 "The payment has already been completed" (§6: 12 repeated executes in the
            # 2021 logs). An execution that did not end in a completed payment (still Authorized,
            # or voided/expired afterwards) has no [OBS] answer; the portal's error list (§11) has
            # 2117 "The payment execution has already been completed" for exactly that, and §10.2
            # names it beside 2062; a 2026 TS client (§11 retry classes) and this project's client
            # (providers/bkash_codes.py) treat both as "already settled: query".
            raise BkashError("2062" if p.status is Status.COMPLETED else "2117")
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
        p.trx_id = self.new_trx_id()
        p.executed_at = p.updated_at = now
        if p.intent == "authorization":
            p.status = Status.AUTHORIZED
            self.record(LedgerKind.AUTHORIZE, p, p.amount_poisha, p.trx_id, now)
        else:
            p.status, p.completed_at = Status.COMPLETED, now
            self.record(LedgerKind.SALE, p, p.amount_poisha, p.trx_id, now)
        # The 2025 shape, keys in the order of two real sandbox execute answers pasted in public
        # code: 2025-11-02 (a WooCommerce shop, sandboxTokenizedUser02, stored file id 62844059896)
        # and 2025-12-22 (wallet 01770618575, stored file id 59183656677). Against the 2019/2021
        # shape (§6) they add payerType "Customer", payerAccount (the wallet, no country prefix,
        # equal to customerMsisdn) and maxRefundableAmount (the amount, as sent: "599.00", "100"),
        # with statusCode/statusMessage last. Both are sales; for an authorization nothing is
        # refundable until capture, so it says "0.00" here [INF].
        return {"paymentID": p.payment_id, "trxID": p.trx_id, "transactionStatus": p.status.value,
                "amount": p.amount, "currency": p.currency, "intent": p.intent,
                "paymentExecuteTime": bkash_time(now), "merchantInvoiceNumber": p.merchant_invoice,
                "payerType": _PAYER_TYPE, "payerReference": p.payer_reference,
                "customerMsisdn": p.wallet, "payerAccount": p.wallet,
                "maxRefundableAmount": self.refund_desk.max_refundable(p),
                "statusCode": "0000", "statusMessage": "Successful"}

    def new_trx_id(self) -> str:
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
            # A captured authorization: 2119 "The authorized payment has already been processed"
            # (§8.4's mapping). A sale was never authorized, so 2119 does not describe it; it gets
            # the portal's 2068 "Transaction has already been completed" (§11), the code void of
            # a completed payment answers too. No source shows either case on the wire [INF].
            raise BkashError("2119" if p.intent == "authorization" else "2068")
        if p.status is Status.CANCELLED:
            raise BkashError("2069")
        if p.status is not Status.AUTHORIZED:
            raise BkashError("2056")
        now = self.clock()
        p.status, p.completed_at, p.updated_at = Status.COMPLETED, now, now
        self.record(LedgerKind.CAPTURE, p, p.amount_poisha, p.trx_id, now)
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
        self.record(LedgerKind.VOID, p, p.amount_poisha, p.trx_id, now)
        return self._settle_answer(p)

    def _settle_answer(self, p: Payment) -> dict:
        # Fields of the [DOC] void page (§8.3); void answers "Cancelled" as the official plugin expects.
        assert p.updated_at is not None
        return _ok(paymentID=p.payment_id, createTime=bkash_time(p.created_at),
                   updateTime=bkash_time(p.updated_at), trxID=p.trx_id,
                   transactionStatus=p.status.value)

    # --- search (refunds: refunds.py) -----------------------------------------------------

    def search_transaction(self, body: dict) -> dict:
        """The [OBS] 2021 answer (§9) brought up to the newest public shape: pybkash 0.4.2 reads
        ``payerAccount`` as always present (``response["payerAccount"]``) and, per its
        docs/return_types.md, ``serviceFee``, ``payerType``, ``creditedAmount`` and
        ``maxRefundableAmount`` for payments ("not present in refund transactions") and
        ``originalTrxAmount`` only for refund transactions. Key order: the 2021 keys in their
        order, payerAccount right after customerMsisdn (pybkash's field order, which follows the
        2021 keys exactly), the optional keys in pybkash's order, statusCode/statusMessage last as
        in every real search answer. The optional keys' position and the fee values are [INF]:
        the sandbox charges no fee (serviceFee "0.00", creditedAmount the full amount)."""
        if body.get("trxID") is None:
            raise BkashError("2065")
        refund = self.find_refund_by_trx(body["trxID"])
        if refund is not None:
            return self.refund_desk.search_answer(*refund)
        p = self.find_by_trx(body["trxID"])
        if p is None:
            raise BkashError("2033")
        assert p.executed_at is not None and p.wallet is not None
        return {"trxID": p.trx_id, "initiationTime": bkash_time(p.executed_at),
                "completedTime": bkash_time(p.completed_at or p.executed_at),
                "transactionType": _PAYMENT_TRX_TYPE,
                # Search reports the wallet with the country prefix, execute without (§4.3);
                # payerAccount is the wallet as the 2025 execute answers give it.
                "customerMsisdn": "88" + p.wallet, "payerAccount": p.wallet,
                "transactionStatus": p.status.value, "amount": p.amount, "currency": p.currency,
                "organizationShortCode": "50011", "serviceFee": format_poisha(0),
                "payerType": _PAYER_TYPE, "creditedAmount": format_poisha(p.amount_poisha),
                "maxRefundableAmount": self.refund_desk.max_refundable(p),
                "statusCode": "0000", "statusMessage": "Successful"}

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
                "void_count": p.void_count, "created_at": p.created_at,
                "executed_at": p.executed_at, "completed_at": p.completed_at,
                "updated_at": p.updated_at, **self.refund_desk.payment_fields(p)}

    def ledger_view(self, payment_id: str | None = None, invoice: str | None = None) -> list[dict]:
        self.expire_holds()
        return [e.to_dict() for e in self.ledger
                if (payment_id is None or e.payment_id == payment_id)
                and (invoice is None or e.merchant_invoice == invoice)]


def _is_reference(value: str | None) -> bool:
    return value is not None and 1 <= len(value) <= 255 and not any(c in value for c in "<>&")


def _is_absolute_http_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
