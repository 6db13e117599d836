"""Fault injection: the failures a durable Monetix client must survive, switched on per test over the
admin API (POST /admin/faults) and matched to one payment so concurrent tests don't collide.

Same model and queue as the bKash sandbox (sandbox/common/faults.py): the oldest matching fault
wins, one per call, ``times`` counts down. Request faults break the answer to a Gate call or the
Payment Page; callback faults change how the platform's callbacks reach the merchant (§4.1:
duplicates and repeats are documented behaviour, loss and disorder are what a network does).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sandbox.common import faults as common


class Operation(StrEnum):
    SALE = "sale"
    CLARIFICATION = "clarification"
    STATUS = "status"
    REFUND = "refund"
    CALLBACK = "callback"
    # The step that ends the customer's visit to the Payment Page (POST .../complete).
    PAYMENT_PAGE = "payment_page"


class FaultKind(StrEnum):
    # Request faults (sale, clarification, status, payment_page).
    DELAY_AFTER_COMMIT = common.DELAY_AFTER_COMMIT
    HTTP_ERROR = common.HTTP_ERROR
    DROP_CONNECTION = common.DROP_CONNECTION
    ERROR_CODE = common.ERROR_CODE
    # Refund only: the provider declines the next matching refund (it is acknowledged, then its
    # callback says decline with ``code``, 20000 by default). Not a broken answer: a refusal.
    DECLINE = "decline"
    # Callback faults.
    DUPLICATE = "duplicate"
    LOSE = "lose"
    DELAY = "delay"
    OUT_OF_ORDER = "out_of_order"
    LATE_REPLAY = "late_replay"


REQUEST_KINDS = frozenset({FaultKind.DELAY_AFTER_COMMIT, FaultKind.HTTP_ERROR,
                           FaultKind.DROP_CONNECTION, FaultKind.ERROR_CODE})
CALLBACK_KINDS = frozenset({FaultKind.DUPLICATE, FaultKind.LOSE, FaultKind.DELAY,
                            FaultKind.OUT_OF_ORDER, FaultKind.LATE_REPLAY})
CALLBACK_STATUSES = ("awaiting clarification", "awaiting customer", "success", "decline",
                     "partially refunded", "refunded")
# A callback's operation.type: a purchase's steps, or a refund's result (§3.6).
CALLBACK_OPERATION_TYPES = ("sale", "refund")


@dataclass(frozen=True)
class Target:
    """What a request or callback is about, for matching faults."""

    project_id: int | None = None
    payment_id: str | None = None
    status: str | None = None
    operation_type: str | None = None  # callbacks: "sale" or "refund"


class FaultMatch(common.FaultMatch):
    payment_id: str | None = None
    project_id: int | None = None
    # Only for callback faults: the callback's payment.status, e.g. lose only the final "success".
    status: str | None = None
    # Only for callback faults: the callback's operation.type, e.g. duplicate only refund callbacks.
    operation_type: str | None = None

    def selects(self, target: Target) -> bool:
        return ((self.payment_id is None or self.payment_id == target.payment_id)
                and (self.project_id is None or self.project_id == target.project_id)
                and (self.status is None or self.status == target.status)
                and (self.operation_type is None or self.operation_type == target.operation_type))


class FaultSpec(common.FaultSpec[Operation, FaultKind, FaultMatch]):
    """The body of POST /admin/faults."""

    provider = "Monetix"
    code_example = "3041"
    applied = "request"

    def allowed_kinds(self) -> frozenset[FaultKind]:
        if self.operation is Operation.CALLBACK:
            return CALLBACK_KINDS
        return REQUEST_KINDS | {FaultKind.DECLINE} if self.operation is Operation.REFUND else REQUEST_KINDS

    def check_match(self) -> None:
        if self.match is None:
            return
        if self.operation is not Operation.CALLBACK:
            for name in ("status", "operation_type"):
                if getattr(self.match, name) is not None:
                    raise ValueError(f"match.{name} selects a callback by its "
                                     f"{'payment.status' if name == 'status' else 'operation.type'}; "
                                     "it applies to operation 'callback' only")
        if self.match.status is not None and self.match.status not in CALLBACK_STATUSES:
            raise ValueError(f"match.status must be one of {list(CALLBACK_STATUSES)}")
        if self.match.operation_type is not None and self.match.operation_type not in CALLBACK_OPERATION_TYPES:
            raise ValueError(f"match.operation_type must be one of {list(CALLBACK_OPERATION_TYPES)}")

    def check_kind(self) -> None:
        if self.kind is FaultKind.ERROR_CODE and self.commit:
            raise ValueError("error_code answers without applying the request; drop commit=true")
        if self.kind is FaultKind.DECLINE and self.commit:
            raise ValueError("decline is the provider's answer to an applied refund; drop commit")
        if self.kind in (FaultKind.DELAY, FaultKind.LATE_REPLAY) and self.delay_seconds <= 0:
            raise ValueError(f"fault kind {self.kind} needs delay_seconds > 0")
