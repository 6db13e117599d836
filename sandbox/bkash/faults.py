"""Fault injection: the failures a durable client must survive, switched on per test over the
admin API (POST /admin/faults) and matched to one payment so concurrent tests don't collide."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Operation(StrEnum):
    GRANT = "grant"
    REFRESH = "refresh"
    CREATE = "create"
    EXECUTE = "execute"
    QUERY = "query"
    CAPTURE = "capture"
    VOID = "void"
    SEARCH = "search"
    REFUND = "refund"
    # The hosted page's last step: the correct PIN, the third wrong OTP/PIN, or cancel.
    PAGE = "page"


class FaultKind(StrEnum):
    DELAY_AFTER_COMMIT = "delay_after_commit"
    HTTP_ERROR = "http_error"
    DROP_CONNECTION = "drop_connection"
    ERROR_CODE = "error_code"
    EXPIRE_TOKEN = "expire_token"
    NO_REDIRECT = "no_redirect"
    REPEAT_REDIRECT = "repeat_redirect"


TRANSPORT_KINDS = frozenset({FaultKind.DELAY_AFTER_COMMIT, FaultKind.HTTP_ERROR,
                             FaultKind.DROP_CONNECTION})
API_KINDS = TRANSPORT_KINDS | {FaultKind.ERROR_CODE}
PAGE_KINDS = TRANSPORT_KINDS | {FaultKind.NO_REDIRECT, FaultKind.REPEAT_REDIRECT}
_TOKEN_OPERATIONS = frozenset({Operation.GRANT, Operation.REFRESH})


class FaultMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paymentID: str | None = None
    merchantInvoiceNumber: str | None = None


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
        if self.commit is None:
            self.commit = self.kind is FaultKind.DELAY_AFTER_COMMIT
        allowed = PAGE_KINDS if self.operation is Operation.PAGE else set(API_KINDS)
        if self.operation not in _TOKEN_OPERATIONS and self.operation is not Operation.PAGE:
            allowed.add(FaultKind.EXPIRE_TOKEN)
        if self.kind not in allowed:
            raise ValueError(f"fault kind {self.kind} does not apply to operation {self.operation}; "
                             f"use one of {sorted(allowed)}")
        if self.kind is FaultKind.ERROR_CODE and not self.code:
            raise ValueError("fault kind error_code needs a bKash code, e.g. {\"code\": \"2003\"}")
        if self.kind is FaultKind.DELAY_AFTER_COMMIT and not self.commit:
            raise ValueError("delay_after_commit always applies the operation; drop commit=false")
        return self


@dataclass(frozen=True)
class Target:
    """What a request is about, for matching faults."""

    payment_id: str | None = None
    invoice: str | None = None


@dataclass
class Fault:
    id: int
    spec: FaultSpec
    remaining: int

    @property
    def kind(self) -> FaultKind:
        return self.spec.kind

    def matches(self, operation: Operation, target: Target, kinds: frozenset[FaultKind]) -> bool:
        if self.spec.operation is not operation or self.kind not in kinds:
            return False
        match = self.spec.match
        if match is None:
            return True
        if match.paymentID is not None and match.paymentID != target.payment_id:
            return False
        if match.merchantInvoiceNumber is not None and match.merchantInvoiceNumber != target.invoice:
            return False
        return True

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

    def take(self, operation: Operation, target: Target, kinds: frozenset[FaultKind]) -> Fault | None:
        """The oldest matching fault, spending one of its ``times``."""
        for fault in self.faults:
            if fault.matches(operation, target, kinds):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None
