"""What the BkashAuthCapture workflow exchanges with merchant code, the endpoint and its activities.

One pydantic model per input, result, update and activity call, so fields can be added later
without breaking replay. Money is integer poisha.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from datetime import timedelta
from enum import StrEnum
from urllib.parse import quote

from pydantic import Field, ValidationInfo, field_validator

from contracts.common import (
    DEFAULT_ACCOUNT,
    Model,
    TimelineEvent,
    account_workflow_id,
    check_account_id,
    check_callback_base_url,
)

WORKFLOW = "BkashAuthCapture"


class BkashOp(StrEnum):
    """The workflow's update and query names, for callers that address it by name (the merchant
    client, the endpoint, the stock `temporal` CLI). Stable: in-flight payments depend on them."""

    APPROVAL_URL = "approval_url"
    CUSTOMER_RETURNED = "customer_returned"
    SERVICE_DELIVERED = "service_delivered"
    SERVICE_FAILED = "service_failed"
    STATE = "state"


class BkashActivity(StrEnum):
    """Activity names: one provider step each (stable, in-flight payments depend on them)."""

    CREATE_PAYMENT = "create_payment"
    EXECUTE_PAYMENT = "execute_payment"
    QUERY_PAYMENT = "query_payment"
    CAPTURE_PAYMENT = "capture_payment"
    VOID_PAYMENT = "void_payment"


def workflow_id_for_invoice(invoice_number: str, account_id: str = DEFAULT_ACCOUNT) -> str:
    """``bkash-<invoice>`` (the default account), ``bkash@<account>:<invoice>`` (another)."""
    return account_workflow_id("bkash", invoice_number, account_id)


def is_bkash_workflow_id(workflow_id: str) -> bool:
    return workflow_id.startswith(("bkash-", "bkash@"))


class BkashStage(StrEnum):
    CREATING = "CREATING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    EXECUTING = "EXECUTING"
    AUTHORIZED = "AUTHORIZED"
    CAPTURING = "CAPTURING"
    VOIDING = "VOIDING"
    # final
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STAGES


FINAL_STAGES = frozenset({BkashStage.CAPTURED, BkashStage.VOIDED, BkashStage.DECLINED,
                          BkashStage.CANCELLED, BkashStage.EXPIRED, BkashStage.FAILED})
# Stages that last one bounded provider call: not worth a search-attribute upsert.
TRANSIENT_STAGES = frozenset({BkashStage.CREATING, BkashStage.EXECUTING})


class BkashErrorKind(StrEnum):
    """What a failed bKash call means for the caller; the ``type`` of the activity's error."""

    RETRYABLE = "BkashRetryableError"
    NO_RESPONSE = "BkashNoResponse"
    ALREADY_SETTLED = "BkashAlreadySettled"
    CUSTOMER_DECLINED = "BkashCustomerDeclined"
    MERCHANT_CONFIG = "BkashMerchantConfigError"
    INVALID_STATE = "BkashInvalidState"
    # No token, so the call was never sent (the hour's budget spent, another host renewing, the
    # token call unanswered): not a lost answer — wait, then send it (issue 11 §3).
    TOKEN_RATE_LIMITED = "BkashTokenRateLimited"
    UNEXPECTED_RESPONSE = "BkashUnexpectedResponse"
    GENERIC = "BkashError"


class TransactionStatus(StrEnum):
    """bKash's transactionStatus values (bkash-api.md §10)."""

    INITIATED = "Initiated"
    AUTHORIZED = "Authorized"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    FAILED = "Failed"


class BkashPaymentRequest(Model):
    """A merchant's request to take an authorization for an invoice.

    Validated when merchant code builds it, before anything is sent to Temporal or bKash. The
    maximum amount is checked against ``context={"max_amount_poisha": ...}`` when given.
    """

    invoice_number: str
    amount_poisha: int = Field(strict=True)
    callback_base_url: str
    payer_reference: str | None = None
    approval_window: timedelta = timedelta(minutes=15)
    hold_deadline: timedelta = timedelta(hours=24)
    max_create_attempts: int = Field(default=3, ge=1, le=10)
    provider_timeout: timedelta = timedelta(seconds=30)
    # How long an execute that we could not send for want of a bKash token (the hour's two
    # grant/refresh calls spent, another host renewing) waits for one before the payment is given
    # up: a little over bKash's one-hour block (bkash-api.md §3.2), never less than the approval
    # window. No money moves while it waits: the execute was never sent.
    token_wait: timedelta = timedelta(minutes=65)
    # The merchant account (bKash credential set) the worker makes the payment with.
    account_id: str = DEFAULT_ACCOUNT

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        return check_account_id(v)

    @field_validator("invoice_number")
    @classmethod
    def _invoice_rules(cls, v: str) -> str:
        # bKash: "max 255 chars, excludes < > &" (reference §4.1); 2031 otherwise.
        if not v or not v.strip():
            raise ValueError("invoice_number must not be empty")
        if len(v) > 255:
            raise ValueError(f"invoice_number is {len(v)} characters; bKash allows at most 255")
        bad = sorted(set(v) & set("<>&"))
        if bad:
            raise ValueError(f"invoice_number must not contain {' '.join(bad)} (bKash rule)")
        if any(unicodedata.category(c).startswith("C") for c in v):
            raise ValueError("invoice_number must not contain control or invisible characters")
        return v

    @field_validator("amount_poisha")
    @classmethod
    def _amount_rules(cls, v: int, info: ValidationInfo) -> int:
        if v <= 0:
            raise ValueError(f"amount_poisha must be positive, got {v}")
        limit = (info.context or {}).get("max_amount_poisha")
        if limit is not None and v > limit:
            raise ValueError(f"amount_poisha {v} is over the configured maximum {limit} "
                             "(PAYMENTS_MAX_AMOUNT_POISHA)")
        return v

    @field_validator("callback_base_url")
    @classmethod
    def _callback_rules(cls, v: str) -> str:
        # bKash answers 2049 "Invalid Merchant Callback URL" otherwise.
        return check_callback_base_url(v)

    @field_validator("payer_reference")
    @classmethod
    def _payer_rules(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_\-.]{1,255}", v):
            raise ValueError("payer_reference must be 1-255 letters, digits, '_', '-' or '.'")
        return v

    @field_validator("approval_window", "hold_deadline", "provider_timeout", "token_wait")
    @classmethod
    def _positive_duration(cls, v: timedelta, info: ValidationInfo) -> timedelta:
        if v <= timedelta(0):
            raise ValueError(f"{info.field_name} must be positive")
        return v

    @property
    def workflow_id(self) -> str:
        return workflow_id_for_invoice(self.invoice_number, self.account_id)

    @property
    def callback_url(self) -> str:
        return f"{self.callback_base_url}/bkash/return/{quote(self.workflow_id, safe='')}"

    def same_payment_as(self, other: BkashPaymentRequest) -> bool:
        """Whether a second start with ``other`` asks for the same payment (same invoice, amount
        and payer); windows and timeouts may differ between retries of one start."""
        return (self.invoice_number, self.amount_poisha, self.payer_reference,
                self.account_id) == (other.invoice_number, other.amount_poisha,
                                     other.payer_reference, other.account_id)


class BkashPaymentState(Model):
    """What the `state` query returns: everything the Web UI or a support engineer needs."""

    workflow_id: str
    invoice_number: str
    amount_poisha: int
    stage: BkashStage
    payment_id: str | None = None
    previous_payment_ids: list[str] = []
    bkash_url: str | None = None
    trx_id: str | None = None
    create_attempts: int = 0
    service_decision: str | None = None
    last_error: str | None = None
    timeline: list[TimelineEvent] = []


class BkashPaymentResult(Model):
    invoice_number: str
    stage: BkashStage
    amount_poisha: int
    payment_id: str | None = None
    trx_id: str | None = None
    detail: str = ""


class ApprovalUrl(Model):
    """The update-with-start answer: where to send the customer."""

    workflow_id: str
    stage: BkashStage
    payment_id: str | None = None
    bkash_url: str | None = None
    detail: str = ""
    # The amount of the running payment, so a retried start can tell it is the same request.
    amount_poisha: int | None = None


class BrowserReturnStatus(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCEL = "cancel"


class SignatureRule(StrEnum):
    """What a redirect ``signature`` that is not the one in the create answer means. No public
    source says the two are equal (reference §5: the signature is opaque), so by default nothing
    rests on it."""

    # Refused, as before: right only if bKash's redirect always repeats the create answer's value.
    STRICT = "strict"
    # success still triggers the one execute (bKash decides: before approval it fails harmlessly
    # with 2056/2060); cancel/failure is recorded and ends nothing (the window and execute decide).
    ADVISORY = "advisory"


class BrowserReturn(Model):
    """The customer's browser coming back from bKash's page (carried by the merchant endpoint)."""

    payment_id: str
    status: BrowserReturnStatus
    signature: str | None = None
    # The endpoint's PAYMENTS_BKASH_REDIRECT_SIGNATURE; an endpoint older than the rule sends none.
    signature_rule: SignatureRule = SignatureRule.ADVISORY


class ReturnOutcome(Model):
    stage: BkashStage
    payment_id: str | None = None
    # Set when bKash needs the customer to approve again (a new payment was created).
    bkash_url: str | None = None
    detail: str = ""
    # What the customer's result page shows besides the outcome.
    amount_poisha: int | None = None


class BkashView(Model):
    """A payment as the endpoint's result page shows it (from the state query or the result)."""

    stage: BkashStage
    amount_poisha: int
    payment_id: str | None = None
    previous_payment_ids: list[str] = []
    # Where the customer approves now (a new payment after a lost execute), while there is one.
    bkash_url: str | None = None


# The token of a payment's result links ---------------------------------------------------------
#
# The callbackURL given to bKash ends in /<token>: HMAC-SHA256 of the workflow id under the
# endpoint's PAYMENTS_LINK_SECRET, truncated to 128 bits, base64url without padding. Nothing is
# stored: the endpoint recomputes it. Only the create_payment activity (worker) and the endpoint
# compute it; it is never in a workflow input, result or history.

RETURN_TOKEN_BYTES = 16
RETURN_TOKEN_LENGTH = 22  # base64url of 16 bytes, unpadded
_TOKEN_PURPOSE = b"bkash-result-link\x00"


def return_link_token(secret: bytes, workflow_id: str) -> str:
    digest = hmac.new(secret, _TOKEN_PURPOSE + workflow_id.encode("utf-8", "replace"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:RETURN_TOKEN_BYTES]).rstrip(b"=").decode("ascii")


def is_return_link_token(token: str, secret: bytes, workflow_id: str) -> bool:
    return len(token) == RETURN_TOKEN_LENGTH and hmac.compare_digest(
        token.encode("ascii", "replace"), return_link_token(secret, workflow_id).encode("ascii"))


class ServiceDecision(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


class ServiceOutcome(Model):
    note: str = Field(default="", max_length=500)


class ServiceDecisionAck(Model):
    stage: BkashStage
    decision: str


# Activity inputs and outputs ---------------------------------------------------------------

class CreatePaymentInput(Model):
    invoice_number: str
    amount_poisha: int
    payer_reference: str
    callback_url: str
    # Which credential set the worker calls bKash with (absent in histories before accounts).
    account_id: str = DEFAULT_ACCOUNT


class CreatedPaymentInfo(Model):
    payment_id: str
    bkash_url: str
    # The opaque redirect signature bKash puts in successCallbackURL since ~2024 (§4.2).
    redirect_signature: str | None = None


class PaymentRef(Model):
    payment_id: str
    invoice_number: str
    account_id: str = DEFAULT_ACCOUNT


class ProviderPaymentStatus(Model):
    """A payment's status as bKash reports it (execute, query, capture, void)."""

    payment_id: str
    transaction_status: str
    trx_id: str | None = None
    amount_poisha: int | None = None
    # True when the status came from Query Payment after an error or an ambiguous attempt.
    reconciled_by_query: bool = False
