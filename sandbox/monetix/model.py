"""What the Monetix sandbox remembers: payments and their statuses (reference §4.3), the customer's
bKash transfers, clarifications, refunds and ledger lines, and how a request's fields are read. No
rules here: those are state.py's (purchases) and refunds.py's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import codes
from .callbacks import CallbackRecord


class PaymentStatus(StrEnum):
    AWAITING_CLARIFICATION = "awaiting clarification"
    AWAITING_CUSTOMER = "awaiting customer"
    SUCCESS = "success"
    DECLINE = "decline"
    # §3.6/§4.3: what a paid purchase becomes once refunds succeeded (in part / in full).
    PARTIALLY_REFUNDED = "partially refunded"
    REFUNDED = "refunded"

    @property
    def final(self) -> bool:
        return self is not PaymentStatus.AWAITING_CLARIFICATION and self is not PaymentStatus.AWAITING_CUSTOMER

    @property
    def paid(self) -> bool:
        """The customer's money reached the merchant: the sale succeeded, refunds or not."""
        return self in (PaymentStatus.SUCCESS, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


class Channel(StrEnum):
    GATE = "gate"
    PAYMENT_PAGE = "payment_page"


class LedgerKind(StrEnum):
    CUSTOMER_PAID = "CUSTOMER_PAID"  # the customer's bKash transfer to the receiver account
    SETTLED = "SETTLED"  # a purchase ended success: what the merchant is credited (§4.5)
    REFUND = "REFUND"  # a refund succeeded: money back to the customer's wallet (§3.6)


class RefundStatus(StrEnum):
    """A refund operation's status (§4.4): processing until the provider answers."""

    PROCESSING = "processing"
    SUCCESS = "success"
    DECLINE = "decline"


class ActionError(Exception):
    """A refused sandbox action (customer pays, page completion): not a Monetix API, so a plain
    HTTP status and an explanation."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass
class CustomerPayment:
    transaction_id: str
    amount: int
    wallet: str
    at: float
    insufficient_balance: bool

    def to_dict(self) -> dict:
        return {"transaction_id": self.transaction_id, "amount": self.amount, "wallet": self.wallet,
                "at": self.at, "insufficient_balance": self.insufficient_balance}


@dataclass
class Clarification:
    at: float
    request_id: str
    body: dict[str, Any]  # as received, signature removed
    accepted: bool = False
    code: str | None = None
    account_number: str | None = None
    transaction_id: str | None = None  # additional_data.transaction_id as sent, accepted or not

    def to_dict(self) -> dict:
        return {"at": self.at, "request_id": self.request_id, "accepted": self.accepted,
                "code": self.code, "account_number": self.account_number,
                "transaction_id": self.transaction_id, "body": self.body}


@dataclass
class Refund:
    """One refund operation of a paid purchase (§3.6): registered by the refund request, final when
    the provider answers (``refund_processing_seconds`` later), reported by a callback with
    ``operation.type = "refund"`` and in the status answer's ``operations[]``."""

    operation_id: int
    request_id: str
    merchant_refund_id: str | None
    amount: int  # poisha
    currency: str
    description: str
    callback_url: str | None
    created_at: float
    due_at: float
    status: RefundStatus = RefundStatus.PROCESSING
    updated_at: float = 0.0
    code: str = codes.AWAITING_PROCESSING
    message: str = codes.message(codes.AWAITING_PROCESSING)
    decline_code: str | None = None  # set by a `decline` fault: how the provider will answer
    provider_refund_id: str | None = None  # the refund's bKash transaction ID, once it succeeded

    def to_dict(self) -> dict:
        return {"operation_id": self.operation_id, "request_id": self.request_id,
                "merchant_refund_id": self.merchant_refund_id, "amount": self.amount,
                "currency": self.currency, "description": self.description, "status": self.status.value,
                "code": self.code, "message": self.message, "created_at": self.created_at,
                "updated_at": self.updated_at, "due_at": self.due_at,
                "provider_refund_id": self.provider_refund_id, "callback_url": self.callback_url}


@dataclass
class Payment:
    project_id: int
    payment_id: str
    channel: Channel
    amount: int  # requested, poisha
    currency: str
    customer_id: str
    description: str
    callback_url: str | None
    operation_id: int
    request_id: str
    created_at: float
    status: PaymentStatus
    updated_at: float
    deadline: float
    account_number: str | None = None
    code: str = codes.AWAITING_CUSTOMER
    message: str = codes.message(codes.AWAITING_CUSTOMER)
    paid_amount: int | None = None
    provider_payment_id: str | None = None
    callback_delay_seconds: float = 0.0
    customer_payments: list[CustomerPayment] = field(default_factory=list)
    clarifications: list[Clarification] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    status_requests: int = 0
    early_status_requests: int = 0

    @property
    def submitted_transaction_ids(self) -> list[str]:
        """Transaction IDs the platform accepted; ``clarifications`` keeps every one sent."""
        return [c.transaction_id for c in self.clarifications if c.accepted and c.transaction_id is not None]

    @property
    def settled_amount(self) -> int:
        """What the customer paid (§4.5), which may differ from what was asked."""
        return self.paid_amount if self.paid_amount is not None else self.amount

    @property
    def refunded_amount(self) -> int:
        return sum(r.amount for r in self.refunds if r.status is RefundStatus.SUCCESS)

    @property
    def refundable_amount(self) -> int:
        """What a new refund may still take [I]: the paid amount less succeeded refunds and those
        still processing (a processing refund holds its amount, so two cannot overspend)."""
        if not self.status.paid:
            return 0
        held = sum(r.amount for r in self.refunds if r.status is not RefundStatus.DECLINE)
        return self.settled_amount - held


@dataclass
class LedgerEntry:
    seq: int
    kind: LedgerKind
    project_id: int
    payment_id: str
    amount: int
    currency: str
    transaction_id: str | None
    wallet: str | None
    at: float

    def to_dict(self) -> dict:
        return {"seq": self.seq, "kind": self.kind.value, "project_id": self.project_id,
                "payment_id": self.payment_id, "amount": self.amount, "currency": self.currency,
                "transaction_id": self.transaction_id, "wallet": self.wallet, "at": self.at}


def field_value(body: Mapping[str, Any], dotted: str) -> Any:
    value: Any = body
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, (Mapping, list))


def parse_project_id(value: Any) -> int | None:
    """project_id is an integer (§3.1); the Payment Page sends it as query text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses; and no project id
    # has more digits than a 64-bit integer (int() refuses over 4300 of them).
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None
