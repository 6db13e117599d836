"""Monetix (ECOMMPAY white-label) Gate client and Payment Page links for bKash purchases.

Shapes: the Monetix bKash page (the seed document: sale, clarification with the bKash transaction ID,
Payment Page parameters) and ../shared/reference/monetix-gate.md (hosts §1, signing §2, Gate §3,
callbacks and statuses §4, Payment Page §5, codes §6).

One concern per module:

- ``errors``: what a failed call means (``MonetixError`` and its subclasses)
- ``config``: where and as whom to call Gate and the Payment Page
- ``gate``: the Gate client and how its answers are read
- ``refunds``: the refund request's rules, its refusals (3230, 3283) and reading refunds back
- ``payment_page``: the signed Payment Page URL and widget parameters
- signing is ``providers.monetix_signing`` (shared with the endpoint and the sandbox)

The request models and their validation, and the status model, are contracts
(``contracts.monetix_requests``, ``contracts.monetix_status``); they are re-exported here for the
callers that know them by their old address.

Pure package: pydantic and httpx only, so the activities, the merchant endpoint and the sandbox tests
share it.
"""

from __future__ import annotations

from contracts.monetix_requests import (
    MonetixClarification,
    MonetixCustomer,
    MonetixSaleRequest,
    PaymentPageParams,
    clarification_problems,
)
from contracts.monetix_status import (
    FINAL_PAYMENT_STATUSES,
    MonetixDisplayItem,
    MonetixErrorDetail,
    MonetixOperation,
    MonetixStatus,
)
from providers.monetix.config import MonetixGateConfig, MonetixPaymentPageConfig
from providers.monetix.errors import (
    MonetixBadSignature,
    MonetixDuplicatePayment,
    MonetixError,
    MonetixInvalidRequest,
    MonetixPaymentNotFound,
    MonetixRequestRejected,
    MonetixResultUnknown,
)
from providers.monetix.gate import MonetixAck, MonetixGateClient
from providers.monetix.refunds import (
    MonetixDuplicateRefund,
    MonetixRefundOperation,
    MonetixRefundOverLimit,
    MonetixRefunds,
)
from providers.monetix.payment_page import BKASH_PAYMENT_METHOD, build_payment_page_url, epay_widget_params

__all__ = [
    "BKASH_PAYMENT_METHOD",
    "FINAL_PAYMENT_STATUSES",
    "MonetixAck",
    "MonetixBadSignature",
    "MonetixClarification",
    "MonetixCustomer",
    "MonetixDisplayItem",
    "MonetixDuplicatePayment",
    "MonetixDuplicateRefund",
    "MonetixError",
    "MonetixErrorDetail",
    "MonetixGateClient",
    "MonetixGateConfig",
    "MonetixInvalidRequest",
    "MonetixOperation",
    "MonetixPaymentNotFound",
    "MonetixPaymentPageConfig",
    "MonetixRefundOperation",
    "MonetixRefundOverLimit",
    "MonetixRefunds",
    "MonetixRequestRejected",
    "MonetixResultUnknown",
    "MonetixSaleRequest",
    "MonetixStatus",
    "PaymentPageParams",
    "build_payment_page_url",
    "clarification_problems",
    "epay_widget_params",
]
