"""bKash errors, classified by what the caller must do about them.

bKash answers business errors with HTTP 200 and ``statusCode != "0000"`` (or the
``errorCode``/``errorMessage`` envelope of the void page); the AWS API Gateway in front of it answers
401/403/5xx on its own. Codes and classes: ../shared/reference/bkash-api.md §11 (portal error list
as captured by api-evangelist, plus the retry classes of a 2026 TS client, plus the issue's own
classification).
"""

from __future__ import annotations

from datetime import timedelta

# Classes named in the issue. Every code in the portal's list lands in exactly one class.
RETRYABLE_CODES = frozenset({"2003", "2020", "2024", "503"})
ALREADY_SETTLED_CODES = frozenset({"2062", "2068", "2069", "2116", "2117", "2119"})
CUSTOMER_DECLINE_CODES = frozenset(
    {str(c) for c in range(2009, 2020)} | {"2023", "2037", "2038", "2057", "2058", "2059"}
)
MERCHANT_CONFIG_CODES = frozenset(
    {"2001", "2002", "2006", "2007", "2008", "2025", "2029", "2031", "2048", "2049", "2063",
     "2064", "2065", "2067", "2118"}
)
# Execute/capture/void on a payment in the wrong state: 2056 "Invalid Payment State" and 2060
# "Payment execution pre-requisite hasn't been met" (customer has not approved). Resolve by asking
# bKash (query) and deciding on what it reports (§11: "add 2056/2060 to query then decide").
INVALID_STATE_CODES = frozenset({"2056", "2060"})

# What a merchant's engineer has to change, for the configuration/validation codes.
_FIX = {
    "2001": "check BKASH_APP_KEY (and that it belongs to this environment: sandbox vs production)",
    "2002": "the paymentID sent is not one bKash issued to this merchant",
    "2006": "the amount must be a positive BDT amount with at most two decimals",
    "2007": "the currency must be BDT",
    "2008": "the intent must be 'sale' or 'authorization'",
    "2025": "the request body is malformed; this is a bug in the client, please report it",
    "2029": "this merchantInvoiceNumber was already paid; use a new invoice number",
    "2031": "merchantInvoiceNumber must be 1-255 characters without < > &",
    "2048": "payerReference was rejected; send a short plain reference",
    "2049": "the callback URL was rejected; PAYMENTS_CALLBACK_BASE_URL must be an absolute http(s) URL",
    "2063": "mode must be '0011' for Auth & Capture checkout",
    "2064": "this product mode is not enabled for the merchant; ask bKash to enable Auth & Capture",
    "2065": "a mandatory field is missing from the request",
    "2067": "the merchant account lacks permission for this API; ask bKash",
    "2118": "the platform value was rejected",
}


class BkashError(Exception):
    """Base class. ``kind`` is the stable name activities use as the Temporal error type."""

    kind = "BkashError"

    def __init__(self, operation: str, message: str, *, code: str | None = None,
                 payment_id: str | None = None, retry_after: timedelta | None = None) -> None:
        self.operation = operation
        self.code = code
        self.provider_message = message
        self.payment_id = payment_id
        self.retry_after = retry_after
        where = f" for payment {payment_id}" if payment_id else ""
        code_part = f" {code}" if code else ""
        super().__init__(f"bKash {operation}{where} failed:{code_part} {message}".rstrip())


class BkashRetryableError(BkashError):
    """bKash said the request failed for a transient reason; the same call may be made again."""

    kind = "BkashRetryableError"


class BkashNoResponse(BkashError):
    """No reliable answer (timeout, dropped connection, 5xx, gateway text): the result is unknown.

    The request may have been applied; resolve with Query Payment, never by a blind re-send of a
    money-moving call.
    """

    kind = "BkashNoResponse"

    def __init__(self, *args, request_sent: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_sent = request_sent


class BkashAlreadySettled(BkashError):
    """The payment was already executed/captured/voided: reconcile by query, never fail blindly."""

    kind = "BkashAlreadySettled"


class BkashCustomerDeclined(BkashError):
    """The customer's wallet, OTP, PIN or balance stopped the payment."""

    kind = "BkashCustomerDeclined"


class BkashMerchantConfigError(BkashError):
    """Merchant configuration or request validation: retrying will not help until someone fixes it."""

    kind = "BkashMerchantConfigError"


class BkashInvalidState(BkashError):
    """The call does not fit the payment's state at bKash (2056/2060): ask bKash, then decide."""

    kind = "BkashInvalidState"


class BkashTokenRateLimited(BkashError):
    """A new token is needed but bKash allows only two grant/refresh calls an hour."""

    kind = "BkashTokenRateLimited"


class BkashUnexpectedResponse(BkashError):
    """A code outside bKash's documented list, or a response that does not parse as expected."""

    kind = "BkashUnexpectedResponse"


ALL_KINDS = tuple(c.kind for c in (BkashRetryableError, BkashNoResponse, BkashAlreadySettled,
                                   BkashCustomerDeclined, BkashMerchantConfigError,
                                   BkashInvalidState, BkashTokenRateLimited,
                                   BkashUnexpectedResponse))


def classify(operation: str, code: str, message: str, payment_id: str | None = None) -> BkashError:
    """Turn a bKash business error code into the typed error the caller must handle."""
    code = str(code).strip()
    if code in RETRYABLE_CODES:
        return BkashRetryableError(operation, message, code=code, payment_id=payment_id)
    if code in ALREADY_SETTLED_CODES:
        return BkashAlreadySettled(operation, message, code=code, payment_id=payment_id)
    if code in CUSTOMER_DECLINE_CODES:
        return BkashCustomerDeclined(operation, message, code=code, payment_id=payment_id)
    if code in INVALID_STATE_CODES:
        return BkashInvalidState(operation, message, code=code, payment_id=payment_id)
    if code in MERCHANT_CONFIG_CODES:
        return BkashMerchantConfigError(operation, f"{message} ({_FIX[code]})", code=code,
                                        payment_id=payment_id)
    return BkashUnexpectedResponse(operation, message or "undocumented error", code=code,
                                   payment_id=payment_id)
