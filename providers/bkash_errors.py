"""bKash errors, classified by what the caller must do about them.

bKash answers business errors with HTTP 200 and ``statusCode != "0000"`` (or the
``errorCode``/``errorMessage`` envelope of the void page); the AWS API Gateway in front of it answers
401/403/5xx on its own. Codes and classes: ../shared/reference/bkash-api.md §11 (portal error list
as captured by api-evangelist, plus the retry classes of a 2026 TS client, plus the issue's own
classification); the codes themselves are named in ``providers.bkash_codes``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from contracts.bkash import BkashErrorKind
from providers.bkash_codes import (
    ALREADY_SETTLED_CODES,
    CUSTOMER_DECLINE_CODES,
    INVALID_STATE_CODES,
    MERCHANT_CONFIG_CODES,
    MERCHANT_CONFIG_FIXES,
    RETRYABLE_CODES,
    STATUS_SUCCESS,
)

if TYPE_CHECKING:
    import httpx

# The code classes live in providers.bkash_codes; re-exported here for the callers that know them
# by this address.
__all__ = [
    "ALL_KINDS", "ALREADY_SETTLED_CODES", "CUSTOMER_DECLINE_CODES", "INVALID_STATE_CODES",
    "MERCHANT_CONFIG_CODES", "RETRYABLE_CODES", "BkashAlreadySettled", "BkashCustomerDeclined",
    "BkashError", "BkashInvalidState", "BkashMerchantConfigError", "BkashNoResponse",
    "BkashRetryableError", "BkashTokenRateLimited", "BkashUnexpectedResponse", "classify",
    "json_object", "raise_for_business_error",
]


class BkashError(Exception):
    """Base class. ``kind`` is the stable name activities use as the Temporal error type."""

    kind: str = BkashErrorKind.GENERIC

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

    kind: str = BkashErrorKind.RETRYABLE


class BkashNoResponse(BkashError):
    """No reliable answer (timeout, dropped connection, 5xx, gateway text): the result is unknown.

    The request may have been applied; resolve with Query Payment, never by a blind re-send of a
    money-moving call.
    """

    kind: str = BkashErrorKind.NO_RESPONSE

    def __init__(self, *args, request_sent: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_sent = request_sent


class BkashAlreadySettled(BkashError):
    """The payment was already executed/captured/voided: reconcile by query, never fail blindly."""

    kind: str = BkashErrorKind.ALREADY_SETTLED


class BkashCustomerDeclined(BkashError):
    """The customer's wallet, OTP, PIN or balance stopped the payment."""

    kind: str = BkashErrorKind.CUSTOMER_DECLINED


class BkashMerchantConfigError(BkashError):
    """Merchant configuration or request validation: retrying will not help until someone fixes it."""

    kind: str = BkashErrorKind.MERCHANT_CONFIG


class BkashInvalidState(BkashError):
    """The call does not fit the payment's state at bKash (2056/2060): ask bKash, then decide."""

    kind: str = BkashErrorKind.INVALID_STATE


class BkashTokenRateLimited(BkashError):
    """A new token is needed but bKash allows only two grant/refresh calls an hour."""

    kind: str = BkashErrorKind.TOKEN_RATE_LIMITED


class BkashUnexpectedResponse(BkashError):
    """A code outside bKash's documented list, or a response that does not parse as expected."""

    kind: str = BkashErrorKind.UNEXPECTED_RESPONSE


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
        return BkashMerchantConfigError(operation, f"{message} ({MERCHANT_CONFIG_FIXES[code]})", code=code,
                                        payment_id=payment_id)
    return BkashUnexpectedResponse(operation, message or "undocumented error", code=code,
                                   payment_id=payment_id)


def json_object(resp: httpx.Response, operation: str, payment_id: str | None) -> dict[str, Any]:
    """The answer's JSON object; anything else is no reliable answer."""
    try:
        data = resp.json()
    except ValueError:
        raise BkashNoResponse(operation, "the answer is not JSON", payment_id=payment_id) from None
    if not isinstance(data, dict):
        raise BkashNoResponse(operation, "the answer is not a JSON object", payment_id=payment_id)
    return data


def raise_for_business_error(data: dict[str, Any], operation: str,
                             payment_id: str | None) -> None:
    # Both envelopes exist (§8.3, §15.5): statusCode/statusMessage and errorCode/errorMessage.
    code = data.get("statusCode", data.get("errorCode"))
    if code is None:
        if "message" in data:  # gateway text, not bKash's answer (§2.2)
            raise BkashNoResponse(operation, "gateway answered without a bKash status",
                                  payment_id=payment_id)
        raise BkashUnexpectedResponse(operation, "the answer carries no status code",
                                      payment_id=payment_id)
    if str(code) != STATUS_SUCCESS or "errorCode" in data:
        message = str(data.get("statusMessage") or data.get("errorMessage") or "")
        raise classify(operation, str(code), message, payment_id)
