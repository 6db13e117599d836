"""Fault injection: the failures a durable Monetix client must survive, switched on per test over the
admin API (POST /admin/faults) and matched to one payment so concurrent tests don't collide.

Same model as the bKash sandbox (sandbox/bkash/faults.py): the oldest matching fault wins, one per
call, ``times`` counts down. Request faults break the answer to a Gate call or the Payment Page;
callback faults change how the platform's callbacks reach the merchant (§4.1: duplicates and
repeats are documented behaviour, loss and disorder are what a network does).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Operation(StrEnum):
    SALE = "sale"
    CLARIFICATION = "clarification"
    STATUS = "status"
    CALLBACK = "callback"
    # The step that ends the customer's visit to the Payment Page (POST .../complete).
    PAYMENT_PAGE = "payment_page"


class FaultKind(StrEnum):
    # Request faults (sale, clarification, status, payment_page).
    DELAY_AFTER_COMMIT = "delay_after_commit"
    HTTP_ERROR = "http_error"
    DROP_CONNECTION = "drop_connection"
    ERROR_CODE = "error_code"
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


class FaultMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: str | None = None
    project_id: int | None = None
    # Only for callback faults: the callback's payment.status, e.g. lose only the final "success".
    status: str | None = None


class FaultSpec(BaseModel):
    """The body of POST /admin/faults."""

    model_config = ConfigDict(extra="forbid")

    operation: Operation
    kind: FaultKind
    times: int = Field(1, ge=1)
    match: FaultMatch | None = None
    delay_seconds: float = Field(0.0, ge=0)
    status: int = Field(503, ge=400, le=599)
    code: str | None = None
    commit: bool | None = None

    @model_validator(mode="after")
    def _fits_operation(self) -> FaultSpec:
        callback = self.operation is Operation.CALLBACK
        allowed = CALLBACK_KINDS if callback else REQUEST_KINDS
        if self.kind not in allowed:
            raise ValueError(f"fault kind {self.kind} does not apply to operation {self.operation}; "
                             f"use one of {sorted(allowed)}")
        if self.match is not None and self.match.status is not None:
            if not callback:
                raise ValueError("match.status selects a callback by its payment.status; "
                                 "it applies to operation 'callback' only")
            if self.match.status not in CALLBACK_STATUSES:
                raise ValueError(f"match.status must be one of {list(CALLBACK_STATUSES)}")
        if self.commit is None:
            self.commit = self.kind is FaultKind.DELAY_AFTER_COMMIT
        if self.kind is FaultKind.ERROR_CODE:
            if not self.code:
                raise ValueError("fault kind error_code needs a Monetix code, e.g. {\"code\": \"3041\"}")
            if self.commit:
                raise ValueError("error_code answers without applying the request; drop commit=true")
        if self.kind is FaultKind.DELAY_AFTER_COMMIT and not self.commit:
            raise ValueError("delay_after_commit always applies the request; drop commit=false")
        if self.kind in (FaultKind.DELAY, FaultKind.LATE_REPLAY) and self.delay_seconds <= 0:
            raise ValueError(f"fault kind {self.kind} needs delay_seconds > 0")
        return self


@dataclass(frozen=True)
class Target:
    """What a request or callback is about, for matching faults."""

    project_id: int | None = None
    payment_id: str | None = None
    status: str | None = None


@dataclass
class Fault:
    id: int
    spec: FaultSpec
    remaining: int

    @property
    def kind(self) -> FaultKind:
        return self.spec.kind

    def matches(self, operation: Operation, target: Target) -> bool:
        if self.spec.operation is not operation:
            return False
        match = self.spec.match
        if match is None:
            return True
        return ((match.payment_id is None or match.payment_id == target.payment_id)
                and (match.project_id is None or match.project_id == target.project_id)
                and (match.status is None or match.status == target.status))

    def to_dict(self) -> dict:
        return {"id": self.id, "remaining": self.remaining, **self.spec.model_dump(mode="json")}


class FaultBook:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.faults: list[Fault] = []

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(next(self._ids), spec, spec.times)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def take(self, operation: Operation, target: Target) -> Fault | None:
        """The oldest matching fault, spending one of its ``times``."""
        for fault in self.faults:
            if fault.matches(operation, target):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None
