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
    CALLBACK = "callback"
    # The step that ends the customer's visit to the Payment Page (POST .../complete).
    PAYMENT_PAGE = "payment_page"


class FaultKind(StrEnum):
    # Request faults (sale, clarification, status, payment_page).
    DELAY_AFTER_COMMIT = common.DELAY_AFTER_COMMIT
    HTTP_ERROR = common.HTTP_ERROR
    DROP_CONNECTION = common.DROP_CONNECTION
    ERROR_CODE = common.ERROR_CODE
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
CALLBACK_STATUSES = ("awaiting clarification", "awaiting customer", "success", "decline")


@dataclass(frozen=True)
class Target:
    """What a request or callback is about, for matching faults."""

    project_id: int | None = None
    payment_id: str | None = None
    status: str | None = None


class FaultMatch(common.FaultMatch):
    payment_id: str | None = None
    project_id: int | None = None
    # Only for callback faults: the callback's payment.status, e.g. lose only the final "success".
    status: str | None = None

    def selects(self, target: Target) -> bool:
        return ((self.payment_id is None or self.payment_id == target.payment_id)
                and (self.project_id is None or self.project_id == target.project_id)
                and (self.status is None or self.status == target.status))


class FaultSpec(common.FaultSpec[Operation, FaultKind, FaultMatch]):
    """The body of POST /admin/faults."""

    provider = "Monetix"
    code_example = "3041"
    applied = "request"

    def allowed_kinds(self) -> frozenset[FaultKind]:
        return CALLBACK_KINDS if self.operation is Operation.CALLBACK else REQUEST_KINDS

    def check_match(self) -> None:
        if self.match is not None and self.match.status is not None:
            if self.operation is not Operation.CALLBACK:
                raise ValueError("match.status selects a callback by its payment.status; "
                                 "it applies to operation 'callback' only")
            if self.match.status not in CALLBACK_STATUSES:
                raise ValueError(f"match.status must be one of {list(CALLBACK_STATUSES)}")

    def check_kind(self) -> None:
        if self.kind is FaultKind.ERROR_CODE and self.commit:
            raise ValueError("error_code answers without applying the request; drop commit=true")
        if self.kind in (FaultKind.DELAY, FaultKind.LATE_REPLAY) and self.delay_seconds <= 0:
            raise ValueError(f"fault kind {self.kind} needs delay_seconds > 0")
