"""Fault injection as both sandboxes do it: the body of POST /admin/faults and the queue that hands a
request its fault. The oldest matching fault wins, one per call, and ``times`` counts down.

Each sandbox subclasses :class:`FaultSpec` and :class:`FaultMatch` with its own operations, fault
kinds and match fields, and says which kinds fit which operation; the rules below hold for both.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Request fault kinds both sandboxes offer, spelled alike in both; each sandbox's FaultKind repeats
# them as members, so the rules below compare by value.
DELAY_AFTER_COMMIT = "delay_after_commit"
HTTP_ERROR = "http_error"
DROP_CONNECTION = "drop_connection"
ERROR_CODE = "error_code"


class FaultMatch(BaseModel):
    """Narrows a fault to one test's payment, so concurrent tests don't collide."""

    model_config = ConfigDict(extra="forbid")

    def selects(self, target: Any) -> bool:
        """Whether a request or callback about ``target`` (the sandbox's Target) is one to break."""
        raise NotImplementedError


OperationT = TypeVar("OperationT", bound=StrEnum)
KindT = TypeVar("KindT", bound=StrEnum)
MatchT = TypeVar("MatchT", bound=FaultMatch)


class FaultSpec(BaseModel, Generic[OperationT, KindT, MatchT]):
    """The body of POST /admin/faults. A sandbox parametrizes it with its operations, fault kinds and
    match, and fills in the hooks and texts below."""

    model_config = ConfigDict(extra="forbid")

    # For the refusals that speak the provider's language.
    provider: ClassVar[str]  # "bKash": "fault kind error_code needs a bKash code"
    code_example: ClassVar[str]  # a code of that provider, for the same sentence
    applied: ClassVar[str]  # what delay_after_commit applies, in the sandbox's words

    operation: OperationT
    kind: KindT
    times: int = Field(1, ge=1)
    match: MatchT | None = None
    delay_seconds: float = Field(0.0, ge=0)
    status: int = Field(503, ge=400, le=599)
    code: str | None = None
    # The provider's text with an error_code answer (default: the code's documented text), e.g.
    # one that echoes a customer's account number, as real providers' messages sometimes do.
    message: str | None = Field(None, max_length=500)
    # None: only delay_after_commit applies the request before breaking its answer.
    commit: bool | None = None

    def allowed_kinds(self) -> Collection[KindT]:
        """The fault kinds that fit ``self.operation``."""
        raise NotImplementedError

    def check_match(self) -> None:
        """Refuse a ``match`` this operation cannot honour; runs before the kind's own rules."""

    def check_kind(self) -> None:
        """The sandbox's own rules for a kind, after the shared ones."""

    @model_validator(mode="after")
    def _fits_operation(self) -> Self:
        allowed = self.allowed_kinds()
        if self.kind not in allowed:
            raise ValueError(f"fault kind {self.kind} does not apply to operation {self.operation}; "
                             f"use one of {sorted(allowed)}")
        self.check_match()
        if self.commit is None:
            self.commit = self.kind == DELAY_AFTER_COMMIT
        if self.kind == ERROR_CODE and not self.code:
            raise ValueError(f"fault kind error_code needs a {self.provider} code, "
                             f"e.g. {{\"code\": \"{self.code_example}\"}}")
        if self.kind == DELAY_AFTER_COMMIT and not self.commit:
            raise ValueError(f"delay_after_commit always applies the {self.applied}; drop commit=false")
        self.check_kind()
        return self


@dataclass
class Fault:
    id: int
    spec: FaultSpec
    remaining: int

    @property
    def kind(self) -> Any:
        return self.spec.kind

    def matches(self, operation: Any, target: Any, kinds: Collection[Any] | None = None) -> bool:
        if self.spec.operation != operation or (kinds is not None and self.kind not in kinds):
            return False
        return self.spec.match is None or self.spec.match.selects(target)

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

    def take(self, operation: Any, target: Any, kinds: Collection[Any] | None = None) -> Fault | None:
        """The oldest fault for ``operation`` that selects ``target`` (and, given ``kinds``, is of one
        of them), spending one of its ``times``."""
        for fault in self.faults:
            if fault.matches(operation, target, kinds):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None
