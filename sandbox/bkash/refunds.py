"""Refunds and refund status, v1 and v2 (reference bkash-api.md §2 #9/#10, §9, §11;
production.md §1): partial and multiple refunds of a completed payment, each within what is still
refundable and within the refund window; every refund a ledger line of its own (REFUND).

Where the answers come from:
- v1 refund: the [OBS] 2021 sandbox logs (copy of prabalsslw/bKash-Tokenized-PHP,
  ``logs/Sandbox_API_Response_Log_2021-11-23_23.json`` and ``..._2021-11-24_00.json``): HTTP 200,
  ``{statusCode, statusMessage, originalTrxID, refundTrxID, transactionStatus, amount, currency,
  charge, completedTime}``; refusals in the usual ``{statusCode, statusMessage}`` envelope, HTTP 200
  (``2072 "Refund amount not valid"``, ``2002 "Invalid Payment ID"``). production.md §1's
  ``errorCode/errorMessageEn/errorMessageBn`` comes from bkash-rs docs, which bkash-api.md §0 flags
  as partly fabricated; the observed envelope wins.
- v1 refund status: "the same URL with only {paymentID, trxID}" (§2 #10); the official plugin's
  refund-status page (bKash-for-woocommerce ``Admin/pages/refund_transaction.php``) reads the refund
  answer's fields (originalTrxID, refundTrxID, amount, currency, charge, completedTime,
  transactionStatus), so status answers the latest refund in that shape; before any refund 2002
  ([OFF] ``ApiComm::refundStatus``: "otherwise invalid payment id will return"). The plugin's own
  ``query_refund`` sends ``amount``, ``sku`` and ``reason`` as JSON null, so a body whose refund
  fields are all absent or null is a status query.
- v2 [3P]: Bikiran.Payment.Bkash (the source of the 2071-2082 codes, §11) models the refund answer
  as ``{originalTrxId, refundTrxId, refundTransactionStatus, originalTrxAmount, refundAmount,
  currency, completedTime, sku, reason}`` and refund status as ``{originalTrxId, originalTrxAmount,
  originalTrxCompletedTime, refundTransactions: [{refundTrxId, refundTransactionStatus,
  refundAmount, completedTime}]}``; a 2026 TS client's fixtures agree and answer refusals with HTTP
  400 ``{internalCode, externalCode, errorMessageEn, errorMessageBn: null}`` (§9). No statusCode
  on success. A PHP client's test answers status before any refund with an empty list.

[INF] rules, no source shows them on the wire: the order of the checks; sku and reason at most 255
characters (the clients in §9 cut both to 255) without ``< > &`` or control characters (the
portal's rule for text fields, §4.1); at most 10 refunds per transaction (§9 [3P] "Up to 10
partial refunds"), the 11th refused with 2074; the window measured from the payment's completion
(the sale's execute, the authorization's capture).
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .codes import BkashError
from .formats import bkash_time, format_poisha, json_text, parse_amount
from .state import LedgerKind, Payment, Refund, Status

if TYPE_CHECKING:
    from .state import BkashSandbox

# "Can be refund a transaction which is no older than 15 days" ([OFF] plugin docblock, §9).
REFUND_WINDOW_SECONDS = 15 * 24 * 3600.0
MAX_REFUNDS = 10  # §9 [3P]: "Up to 10 partial refunds"
TEXT_LIMIT = 255  # sku and reason, see the module docstring
V2_REFUND_PATH = "/v2/tokenized-checkout/refund/payment/transaction"
V2_REFUND_STATUS_PATH = "/v2/tokenized-checkout/refund/payment/status"
# The fields that make a v1 /payment/refund body a refund rather than a status query (v2's name for
# the amount included, so that it is refused with 2065 rather than read as a status query).
_REFUND_FIELDS = ("amount", "refundAmount", "sku", "reason")
_REFUND_TRX_TYPE = "bKash Checkout Reversal via API"  # [OBS] 2021 search of a refundTrxID (§9)
_NOT_TEXT = frozenset("<>&")


@dataclass(frozen=True)
class _Fields:
    """A version's names for the request fields (§9: v2 spells them paymentId/trxId/refundAmount)."""

    api: str
    payment_id: str
    trx_id: str
    amount: str


V1 = _Fields("v1", "paymentID", "trxID", "amount")
V2 = _Fields("v2", "paymentId", "trxId", "refundAmount")


@dataclass
class RefundSettings:
    """The sandbox's refund knobs, changed at run time over ``POST /admin/refund-settings``."""

    window_seconds: float = REFUND_WINDOW_SECONDS
    max_refunds: int = MAX_REFUNDS  # 0: no limit

    def to_dict(self) -> dict:
        return asdict(self)


class RefundDesk:
    """bKash's refund rules over the sandbox's payments and ledger (``BkashSandbox.refund_desk``)."""

    def __init__(self, sandbox: BkashSandbox) -> None:
        self.sandbox = sandbox
        self.settings = self.startup_settings()

    def startup_settings(self) -> RefundSettings:
        # BkashSandboxConfig has no refund fields yet; when it gains ``refund_window_seconds`` or
        # ``refund_max_count`` the sandbox starts from them (and ``reset`` returns to them).
        config = self.sandbox.config
        return RefundSettings(
            window_seconds=float(getattr(config, "refund_window_seconds", REFUND_WINDOW_SECONDS)),
            max_refunds=int(getattr(config, "refund_max_count", MAX_REFUNDS)))

    def reset(self) -> None:
        self.settings = self.startup_settings()

    # --- the API ------------------------------------------------------------------------------

    @staticmethod
    def is_status_query(body: dict) -> bool:
        """v1 refund and refund status share one URL (§2 #9/#10)."""
        return all(body.get(name) is None for name in _REFUND_FIELDS)

    def refund_v1(self, body: dict) -> dict:
        p, refund = self._refund(body, V1)
        return v1_answer(p, refund)

    def refund_status_v1(self, body: dict) -> dict:
        p = self._transaction(body, V1)
        if not p.refunds:
            raise BkashError("2002")  # [OFF] ApiComm::refundStatus: not refunded → invalid payment id
        return v1_answer(p, p.refunds[-1])

    def refund_v2(self, body: dict) -> dict:
        p, refund = self._refund(body, V2)
        assert p.trx_id is not None
        return {"originalTrxId": p.trx_id, "refundTrxId": refund.trx_id,
                "refundTransactionStatus": "Completed", "originalTrxAmount": p.amount,
                "refundAmount": refund.amount, "currency": p.currency,
                "completedTime": bkash_time(refund.at), "sku": refund.sku, "reason": refund.reason}

    def refund_status_v2(self, body: dict) -> dict:
        p = self._transaction(body, V2)
        assert p.trx_id is not None and p.completed_at is not None
        return {"originalTrxId": p.trx_id, "originalTrxAmount": p.amount,
                "originalTrxCompletedTime": bkash_time(p.completed_at),
                "refundTransactions": [
                    {"refundTrxId": r.trx_id, "refundTransactionStatus": "Completed",
                     "refundAmount": r.amount, "completedTime": bkash_time(r.at)}
                    for r in p.refunds]}

    def _payment(self, body: dict, fields: _Fields) -> Payment:
        p = self.sandbox.find(body.get(fields.payment_id))
        if p is None:
            raise BkashError("2002")  # [OBS] paymentID null → 2002 "Invalid Payment ID" (§9)
        return p

    def _transaction(self, body: dict, fields: _Fields) -> Payment:
        """The payment of a status query: known paymentID, its own trxID. A payment without
        refunds answers as the version does (v1 2002, v2 an empty list)."""
        p = self._payment(body, fields)
        if body.get(fields.trx_id) in (None, ""):
            raise BkashError("2065")
        if body[fields.trx_id] != p.trx_id:
            raise BkashError("2077")
        if p.status is not Status.COMPLETED:
            # Not refundable, so never refunded. v1 answers as for any transaction without refunds
            # ([OFF] plugin: 2002); v2 has no completed transaction to list refunds of, and says
            # so with the codes a refund of it gets (2074 voided/expired, 2127 Authorized) [INF].
            if fields is V1:
                raise BkashError("2002")
            raise BkashError("2074" if p.status is Status.CANCELLED else "2127")
        return p

    def _refund(self, body: dict, fields: _Fields) -> tuple[Payment, Refund]:
        p = self._payment(body, fields)
        if body.get(fields.trx_id) in (None, "") or body.get(fields.amount) is None:
            raise BkashError("2065")
        # [3P] laravel-bkash PR #8: without sku bKash answers "Invalid SKU" (§9, production.md §1).
        sku = _text(body.get("sku"), missing="2073", too_long="2075")
        reason = _text(body.get("reason"), missing="2078", too_long="2076")
        amount = parse_amount(body[fields.amount])
        if amount is None:
            raise BkashError("2072")
        if body[fields.trx_id] != p.trx_id:
            raise BkashError("2077")  # a trxID of another payment, or a refund's own
        if p.status is Status.CANCELLED:
            raise BkashError("2074")  # voided or expired: "The transaction cannot be reversed"
        if p.status is not Status.COMPLETED:
            raise BkashError("2127")  # Authorized: "Transaction not yet completed"
        now = self.sandbox.clock()
        assert p.completed_at is not None and p.trx_id is not None
        if now - p.completed_at > self.settings.window_seconds:
            raise BkashError("2071")  # "Refund after specified days not allowed"
        poisha, amount_text = amount
        left = p.amount_poisha - p.refunded_poisha
        if poisha > left:
            latest = p.refunds[-1] if p.refunds else None
            if left == 0 and latest is not None and latest.amount_poisha == poisha:
                # [OBS] twice in the 2021 logs: a fully refunded transaction, refunded again for
                # the same amount, answered its refund again (same refundTrxID and completedTime)
                # and moved no money.
                latest.repeats += 1
                return p, latest
            raise BkashError("2072")  # [OBS] more than the original (§9); here: than what is left
        if self.settings.max_refunds and len(p.refunds) >= self.settings.max_refunds:
            raise BkashError("2074")
        refund = Refund(self.sandbox.new_trx_id(), amount_text, poisha, now, sku=sku,
                        reason=reason, api=fields.api)
        p.refunds.append(refund)
        self.sandbox.record(LedgerKind.REFUND, p, poisha, refund.trx_id, now, original_trx_id=p.trx_id)
        return p, refund

    # --- what other answers say about refunds -------------------------------------------------

    @staticmethod
    def max_refundable(p: Payment) -> str:
        """``maxRefundableAmount`` in execute and search: the amount as sent while nothing is
        refunded (the 2025 execute answers echo it), the remainder after refunds, 0.00 for a
        payment that holds no merchant money (Authorized, Cancelled, Failed) [INF]."""
        if p.status is not Status.COMPLETED:
            return format_poisha(0)
        return p.amount if not p.refunds else format_poisha(p.amount_poisha - p.refunded_poisha)

    @staticmethod
    def search_answer(p: Payment, refund: Refund) -> dict:
        """Search of a refundTrxID: [OBS] 2021 "bKash Checkout Reversal via API" with the refund's
        amount (§9 logs); payerAccount and originalTrxAmount as pybkash reads them."""
        assert p.wallet is not None
        at = bkash_time(refund.at)
        return {"trxID": refund.trx_id, "initiationTime": at, "completedTime": at,
                "transactionType": _REFUND_TRX_TYPE, "customerMsisdn": "88" + p.wallet,
                "payerAccount": p.wallet, "transactionStatus": "Completed", "amount": refund.amount,
                "currency": p.currency, "organizationShortCode": "50011",
                "originalTrxAmount": p.amount, "statusCode": "0000", "statusMessage": "Successful"}

    # --- admin ----------------------------------------------------------------------------------

    def outside_refund(self, p: Payment, poisha: int, reason: str) -> Refund:
        """A refund made outside the API (the merchant portal): a ledger line and a refundTrxID
        like any refund, but no API call, so the merchant's integration never heard of it."""
        if p.status is not Status.COMPLETED or p.trx_id is None:
            raise ValueError(f"payment {p.payment_id} is {p.status.value}: only a completed "
                             "payment can be refunded")
        left = p.amount_poisha - p.refunded_poisha
        if not 0 < poisha <= left:
            raise ValueError(f"{format_poisha(poisha)} BDT: the payment has {format_poisha(left)} "
                             "BDT left to refund")
        now = self.sandbox.clock()
        refund = Refund(self.sandbox.new_trx_id(), format_poisha(poisha), poisha, now,
                        reason=reason, api="portal")
        p.refunds.append(refund)
        self.sandbox.record(LedgerKind.REFUND, p, poisha, refund.trx_id, now,
                            original_trx_id=p.trx_id)
        return refund

    def age(self, p: Payment, seconds: float) -> None:
        """Move a completed payment's completion (and the times before it) ``seconds`` into the
        past, so that a test reaches the refund window without waiting. Refunds keep their times."""
        if p.status is not Status.COMPLETED or p.completed_at is None:
            raise ValueError(f"payment {p.payment_id} is {p.status.value}: only a completed payment "
                             "(a sale, or a captured authorization) has a completion time to age")
        p.created_at -= seconds
        p.completed_at -= seconds
        if p.executed_at is not None:
            p.executed_at -= seconds
        if p.updated_at is not None:  # a completed payment's last update is its completion
            p.updated_at -= seconds

    def payment_fields(self, p: Payment) -> dict:
        """The refund part of ``GET /admin/payments/{paymentID}``."""
        ends_at = None
        left = 0
        if p.status is Status.COMPLETED and p.completed_at is not None:
            ends_at = p.completed_at + self.settings.window_seconds
            left = p.amount_poisha - p.refunded_poisha
        return {"refunded": format_poisha(p.refunded_poisha), "refunded_poisha": p.refunded_poisha,
                "refundable": format_poisha(left), "refundable_poisha": left,
                "refund_window_ends_at": ends_at, "refunds": [refund_view(p, r) for r in p.refunds]}

    def refunds_view(self, payment_id: str | None = None, invoice: str | None = None) -> list[dict]:
        """Every refund, oldest first, narrowed to one paymentID and/or invoice."""
        found = [(p, r) for p in self.sandbox.payments.values() for r in p.refunds
                 if (payment_id is None or p.payment_id == payment_id)
                 and (invoice is None or p.merchant_invoice == invoice)]
        return [refund_view(p, r) for p, r in sorted(found, key=lambda pr: pr[1].at)]


def v1_answer(p: Payment, refund: Refund) -> dict:
    """The [OBS] v1 refund answer (§9), key order as logged; also v1 refund status's answer."""
    return {"statusCode": "0000", "statusMessage": "Successful", "originalTrxID": p.trx_id,
            "refundTrxID": refund.trx_id, "transactionStatus": "Completed", "amount": refund.amount,
            "currency": p.currency, "charge": "0.00", "completedTime": bkash_time(refund.at)}


def v2_error_body(error: BkashError) -> dict:
    """v2's refusal, sent with HTTP 400 (§9 [3P]). internalCode is the message as a slug [INF]
    (the TS client's fixtures show slugs such as "invalid_payment_state"); externalCode is the code
    the rest of this sandbox answers; no source gives the Bengali texts: null, as in those fixtures."""
    slug = "".join(c if c.isalnum() else "_" for c in error.message.lower()).strip("_")
    return {"internalCode": "_".join(part for part in slug.split("_") if part),
            "externalCode": error.code, "errorMessageEn": error.message, "errorMessageBn": None}


def refund_view(p: Payment, r: Refund) -> dict:
    return {"payment_id": p.payment_id, "merchant_invoice": p.merchant_invoice,
            "original_trx_id": p.trx_id, "refund_trx_id": r.trx_id,
            "amount": format_poisha(r.amount_poisha), "amount_poisha": r.amount_poisha,
            "amount_as_sent": r.amount, "sku": r.sku, "reason": r.reason, "api": r.api,
            "at": r.at, "completed_time": bkash_time(r.at), "repeats": r.repeats}


def _text(value: object, *, missing: str, too_long: str) -> str:
    """sku / reason: a non-blank text of at most TEXT_LIMIT characters (see the module docstring)."""
    text = json_text(value)
    if text is None or not text.strip():
        raise BkashError(missing)
    if len(text) > TEXT_LIMIT:
        raise BkashError(too_long)
    if any(c in _NOT_TEXT or unicodedata.category(c).startswith("C") for c in text):
        raise BkashError(missing)
    return text
