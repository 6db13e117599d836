"""Fault injection: the failures a durable client must survive, switched on per test over the
admin API (POST /admin/faults) and matched to one payment so concurrent tests don't collide. The
model and its queue are the Monetix sandbox's too (sandbox/common/faults.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sandbox.common import faults as common


class Operation(StrEnum):
    GRANT = "grant"
    REFRESH = "refresh"
    CREATE = "create"
    EXECUTE = "execute"
    QUERY = "query"
    CAPTURE = "capture"
    VOID = "void"
    SEARCH = "search"
    # Refund and refund status are separate operations for both APIs (v1 shares one URL between
    # them; v2's /v2/tokenized-checkout/refund/payment/transaction and .../status), so a test can
    # lose a refund's answer and still get the refund status that resolves it.
    REFUND = "refund"
    REFUND_STATUS = "refund_status"
    # The hosted page's last step: the correct PIN, the third wrong OTP/PIN, or cancel.
    PAGE = "page"


class FaultKind(StrEnum):
    DELAY_AFTER_COMMIT = common.DELAY_AFTER_COMMIT
    HTTP_ERROR = common.HTTP_ERROR
    DROP_CONNECTION = common.DROP_CONNECTION
    ERROR_CODE = common.ERROR_CODE
    EXPIRE_TOKEN = "expire_token"
    NO_REDIRECT = "no_redirect"
    REPEAT_REDIRECT = "repeat_redirect"


TRANSPORT_KINDS = frozenset({FaultKind.DELAY_AFTER_COMMIT, FaultKind.HTTP_ERROR,
                             FaultKind.DROP_CONNECTION})
API_KINDS = TRANSPORT_KINDS | {FaultKind.ERROR_CODE}
PAGE_KINDS = TRANSPORT_KINDS | {FaultKind.NO_REDIRECT, FaultKind.REPEAT_REDIRECT}
_TOKEN_OPERATIONS = frozenset({Operation.GRANT, Operation.REFRESH})


@dataclass(frozen=True)
class Target:
    """What a request is about, for matching faults."""

    payment_id: str | None = None
    invoice: str | None = None


class FaultMatch(common.FaultMatch):
    paymentID: str | None = None
    merchantInvoiceNumber: str | None = None

    def selects(self, target: Target) -> bool:
        return ((self.paymentID is None or self.paymentID == target.payment_id)
                and (self.merchantInvoiceNumber is None or self.merchantInvoiceNumber == target.invoice))


class FaultSpec(common.FaultSpec[Operation, FaultKind, FaultMatch]):
    """The body of POST /admin/faults."""

    provider = "bKash"
    code_example = "2003"
    applied = "operation"

    def allowed_kinds(self) -> frozenset[FaultKind]:
        if self.operation is Operation.PAGE:
            return PAGE_KINDS
        # A token call has no token to expire; every other API call is checked by the gateway (§2.2).
        if self.operation in _TOKEN_OPERATIONS:
            return API_KINDS
        return API_KINDS | {FaultKind.EXPIRE_TOKEN}
