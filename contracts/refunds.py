"""What the PaymentRefunds workflow exchanges with merchant code, the endpoint and its activities.

One refunds workflow per payment (``refunds-<payment workflow id>``) holds that payment's refund
ledger and serializes its refunds, so two concurrent requests can never together refund more than
was captured (bKash) or paid (Monetix). Each refund is keyed by the merchant's refund id.

Sources: ../shared/reference/production.md §1 (bKash refunds, 15-day window, sku required),
§3 (Monetix refunds, 3230, 3283); bkash-api.md §9; monetix-gate.md §3.6.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from contracts.bkash import workflow_id_for_invoice
from contracts.common import DEFAULT_ACCOUNT, Model, Provider, TimelineEvent, check_account_id
from contracts.monetix import workflow_id_for_payment

WORKFLOW = "PaymentRefunds"
# bKash: "can be refund a transaction which is no older than 15 days" (official plugin docblock).
DEFAULT_BKASH_WINDOW = timedelta(days=15)
# Monetix documents no window; [INF] a long default keeps the ledger open for chargeback-era refunds.
DEFAULT_MONETIX_WINDOW = timedelta(days=180)
# bKash v2: "up to 10 partial refunds" (bkash-api.md §9, a 3rd-party client); configurable.
DEFAULT_MAX_REFUNDS = 10

_REFUND_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BAD_TEXT = set("<>&")


class RefundOp(StrEnum):
    """The refunds workflow's update and query names (stable)."""

    REQUEST_REFUND = "request_refund"
    AWAIT_REFUND = "await_refund"
    PROVIDER_CALLBACK = "provider_callback"
    STATE = "state"


class RefundActivity(StrEnum):
    LOAD_PAYMENT = "load_refundable_payment"
    BKASH_REFUND = "bkash_refund"
    MONETIX_REFUND = "monetix_refund"
    MONETIX_REFUND_STATUS = "monetix_refund_status"


class RefundErrorKind(StrEnum):
    """What a failed refund call means; the ``type`` of the activity's error."""

    RESULT_UNKNOWN = "RefundResultUnknown"        # no reliable answer: resolve by refund status
    RETRYABLE = "RefundRetryable"                 # the provider said: try again later
    ALREADY_REFUNDED = "RefundAlreadyRefunded"    # nothing left to refund at the provider
    OVER_LIMIT = "RefundOverLimit"                # more than the remaining refundable amount
    WINDOW_PASSED = "RefundWindowPassed"          # too late for the provider
    MERCHANT_CONFIG = "RefundMerchantConfig"      # sku, reason, permissions: fix and retry
    NOT_REFUNDABLE = "RefundNotRefundable"        # the payment is not captured / successful


class RefundStage(StrEnum):
    PENDING = "PENDING"        # accepted, waiting for the refunds before it
    REFUNDING = "REFUNDING"    # sent (or being resolved) at the provider
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (RefundStage.SUCCEEDED, RefundStage.FAILED)


class LedgerStage(StrEnum):
    """The refunds workflow's own stage (the Web UI's PaymentStage of a ``refunds-...`` row)."""

    LOADING = "LOADING"                  # reading the payment's outcome
    REFUNDABLE = "REFUNDABLE"            # open, nothing in flight
    REFUNDING = "REFUNDING"              # a refund is in flight
    FULLY_REFUNDED = "FULLY_REFUNDED"    # final
    WINDOW_CLOSED = "WINDOW_CLOSED"      # final
    NOT_REFUNDABLE = "NOT_REFUNDABLE"    # final: the payment was not captured / successful


def refunds_workflow_id(provider: Provider | str, payment_key: str,
                        account_id: str = DEFAULT_ACCOUNT) -> str:
    """``refunds-bkash-<invoice>`` / ``refunds-monetix-<payment_id>`` (another account:
    ``refunds-bkash@<account>:<invoice>``, ...): from the payment's workflow id."""
    return f"refunds-{payment_workflow_id(provider, payment_key, account_id)}"


def payment_workflow_id(provider: Provider | str, payment_key: str,
                        account_id: str = DEFAULT_ACCOUNT) -> str:
    if Provider(provider) is Provider.BKASH:
        return workflow_id_for_invoice(payment_key, account_id)
    return workflow_id_for_payment(payment_key, account_id)


def _check_text(value: str, name: str, limit: int) -> str:
    if not value or not value.strip():
        raise ValueError(f"{name} is required")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters; at most {limit}")
    bad = sorted(set(value) & _BAD_TEXT)
    if bad:
        raise ValueError(f"{name} must not contain {' '.join(bad)}")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise ValueError(f"{name} must not contain control or invisible characters")
    return value


class RefundRequest(Model):
    """A merchant's refund of (part of) a captured bKash payment or a successful Monetix purchase.

    ``refund_id`` is the merchant's idempotency key: the same id with the same amount is the same
    refund; with another amount it is refused. ``sku`` is required by bKash (without it: "Invalid
    SKU", laravel-bkash PR #8) and ignored by Monetix; ``reason`` goes to bKash as ``reason`` and to
    Monetix as ``payment.description``.
    """

    provider: Provider
    payment_key: str = Field(min_length=1, max_length=255)  # invoice (bKash) / payment_id (Monetix)
    refund_id: str
    amount_poisha: int = Field(strict=True)
    reason: str
    sku: str | None = None
    # The payment's merchant account (its credential set / Monetix project refunds it).
    account_id: str = DEFAULT_ACCOUNT

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        return check_account_id(v)

    @field_validator("refund_id")
    @classmethod
    def _refund_id(cls, v: str) -> str:
        if not _REFUND_ID.fullmatch(v):
            raise ValueError("refund_id must be 1-64 letters, digits, '.', '_' or '-' (your "
                             "refund's unique key)")
        return v

    @field_validator("amount_poisha")
    @classmethod
    def _amount(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"amount_poisha must be positive, got {v}")
        return v

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        # bKash 2076 "Reason Character Limit Exceeded": the limit is not published; [INF] 255.
        return _check_text(v, "reason", 255)

    @field_validator("sku")
    @classmethod
    def _sku(cls, v: str | None) -> str | None:
        # bKash 2075 "SKU Character Limit Exceeded": the limit is not published; [INF] 255.
        return None if v is None else _check_text(v, "sku", 255)

    @model_validator(mode="after")
    def _bkash_needs_sku(self) -> RefundRequest:
        if self.provider is Provider.BKASH and self.sku is None:
            raise ValueError("sku is required for a bKash refund (bKash answers 'Invalid SKU')")
        return self

    @property
    def workflow_id(self) -> str:
        return refunds_workflow_id(self.provider, self.payment_key, self.account_id)


class RefundsInput(Model):
    """The refunds workflow's input: which payment, and the rules (configurable)."""

    provider: Provider
    payment_key: str
    bkash_window: timedelta = DEFAULT_BKASH_WINDOW
    monetix_window: timedelta = DEFAULT_MONETIX_WINDOW
    max_refunds: int = Field(default=DEFAULT_MAX_REFUNDS, ge=1, le=100)
    provider_timeout: timedelta = timedelta(seconds=30)
    # Monetix: how long to wait for the refund callback before asking the status request.
    callback_wait: timedelta = timedelta(minutes=2)
    callback_base_url: str | None = None
    account_id: str = DEFAULT_ACCOUNT  # absent in ledgers started before accounts

    @property
    def payment_workflow_id(self) -> str:
        return payment_workflow_id(self.provider, self.payment_key, self.account_id)

    @property
    def window(self) -> timedelta:
        return self.bkash_window if self.provider is Provider.BKASH else self.monetix_window


class RefundablePayment(Model):
    """The payment a refund belongs to, as its own workflow's result reports it."""

    provider: Provider
    payment_workflow_id: str
    refundable: bool
    why_not: str = ""
    captured_poisha: int = 0   # bKash: captured; Monetix: what was *paid* (may differ from asked)
    payment_id: str | None = None  # bKash paymentID / Monetix payment_id
    trx_id: str | None = None      # bKash trxID
    settled_at: datetime | None = None


class RefundRecord(Model):
    refund_id: str
    amount_poisha: int
    reason: str
    stage: RefundStage
    requested_at: datetime
    finished_at: datetime | None = None
    provider_refund_id: str | None = None  # bKash refundTrxID / Monetix operation id
    request_id: str | None = None          # Monetix: the refund request's id (matches callbacks)
    reconciled: bool = False               # resolved by refund status after a lost answer
    detail: str = ""


class RefundsState(Model):
    """The ``state`` query: the payment's refund ledger."""

    workflow_id: str
    provider: Provider
    payment_key: str
    stage: LedgerStage
    captured_poisha: int = 0
    refunded_poisha: int = 0
    pending_poisha: int = 0
    refundable_poisha: int = 0
    window_ends_at: datetime | None = None
    refunds: list[RefundRecord] = []
    last_error: str | None = None
    timeline: list[TimelineEvent] = []


# Activity inputs and outputs --------------------------------------------------------------

class BkashRefundCall(Model):
    payment_id: str
    trx_id: str
    amount_poisha: int
    sku: str
    reason: str
    refund_id: str
    # refundTrxIDs this ledger already holds: a refund bKash reports beyond these is ours (refunds
    # of one payment are serialized), which is how a lost answer is resolved by refund status.
    known_refund_trx_ids: list[str] = []
    account_id: str = DEFAULT_ACCOUNT


class MonetixRefundCall(Model):
    payment_id: str
    amount_poisha: int
    currency: str = "BDT"
    description: str
    refund_id: str  # sent as payment.merchant_refund_id
    callback_url: str | None = None
    # Refund operation ids this ledger already holds; None means "not told" (then a lost answer is
    # matched only by request id or merchant_refund_id, never by amount alone).
    known_operation_ids: list[str] | None = None
    account_id: str = DEFAULT_ACCOUNT


class MonetixRefundStatusCall(Model):
    payment_id: str
    refund_id: str
    amount_poisha: int
    request_id: str | None = None
    known_operation_ids: list[str] | None = None
    # True only when the refund was never acknowledged: "not registered" then means "never sent".
    not_found_is_final: bool = False
    account_id: str = DEFAULT_ACCOUNT


class ProviderRefundResult(Model):
    """A refund as the provider reports it: ``pending`` only for Monetix (the result comes by
    callback or status)."""

    status: RefundStage  # SUCCEEDED, FAILED or REFUNDING (pending at the provider)
    provider_refund_id: str | None = None
    amount_poisha: int | None = None
    request_id: str | None = None
    reconciled: bool = False
    detail: str = ""
