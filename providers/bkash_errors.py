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
from contracts.refunds import RefundErrorKind
from providers.bkash_codes import (
    ALREADY_SETTLED_CODES,
    CUSTOMER_DECLINE_CODES,
    INVALID_STATE_CODES,
    MERCHANT_CONFIG_CODES,
    MERCHANT_CONFIG_FIXES,
    REFUND_ALREADY_REFUNDED_CODES,
    REFUND_MERCHANT_CONFIG_FIXES,
    REFUND_NOT_REFUNDABLE_CODES,
    REFUND_OVER_LIMIT_CODES,
    REFUND_RETRYABLE_CODES,
    REFUND_WHAT_TO_DO,
    REFUND_WINDOW_CODES,
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
    "BkashRetryableError", "BkashTokenRateLimited", "BkashTokenUnavailable",
    "BkashUnexpectedResponse", "classify",
    "json_object", "raise_for_business_error",
    "REFUND_KINDS", "BkashRefundAlreadyRefunded", "BkashRefundMerchantConfig",
    "BkashRefundNotRefundable", "BkashRefundOverLimit", "BkashRefundWindowPassed",
    "classify_refund", "raise_for_refund_error",
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
    """No token, so the call was never sent: a new token is needed but bKash allows only two
    grant/refresh calls an hour. Not a lost answer: wait ``retry_after``, then send the call."""

    kind: str = BkashErrorKind.TOKEN_RATE_LIMITED


class BkashTokenUnavailable(BkashTokenRateLimited):
    """No token right now, so the call was never sent: another process holds the renewal lease
    past the wait, or the grant/refresh call itself got no answer. Same kind, same remedy: wait a
    little and send the call (issue 11 §3: a call we refused ourselves is not a lost answer)."""


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


# --- Refunds ---------------------------------------------------------------------------------
# A refund refusal is final for that refund: its kind is the refunds contract's RefundErrorKind,
# which the refund workflow's retry policy lists as non-retryable.

class BkashRefundOverLimit(BkashError):
    """2072/2026: more than bKash still holds refundable for the transaction."""

    kind: str = RefundErrorKind.OVER_LIMIT


class BkashRefundWindowPassed(BkashError):
    """2071: the transaction is older than bKash's refund window."""

    kind: str = RefundErrorKind.WINDOW_PASSED


class BkashRefundAlreadyRefunded(BkashError):
    """2034: bKash says the transaction was already reversed; nothing is left."""

    kind: str = RefundErrorKind.ALREADY_REFUNDED


class BkashRefundNotRefundable(BkashError):
    """2074/2127 (and 2056/2069): bKash does not hold the transaction as a refundable one."""

    kind: str = RefundErrorKind.NOT_REFUNDABLE


class BkashRefundMerchantConfig(BkashMerchantConfigError):
    """sku, reason, trxID, paymentID or the account's permissions: fix, then refund again."""

    kind: str = RefundErrorKind.MERCHANT_CONFIG


REFUND_KINDS = tuple(c.kind for c in (BkashRefundOverLimit, BkashRefundWindowPassed,
                                      BkashRefundAlreadyRefunded, BkashRefundNotRefundable,
                                      BkashRefundMerchantConfig))

_REFUND_CLASSES: tuple[tuple[frozenset[str], type[BkashError]], ...] = (
    (REFUND_OVER_LIMIT_CODES, BkashRefundOverLimit),
    (REFUND_WINDOW_CODES, BkashRefundWindowPassed),
    (REFUND_ALREADY_REFUNDED_CODES, BkashRefundAlreadyRefunded),
    (REFUND_NOT_REFUNDABLE_CODES, BkashRefundNotRefundable),
)
# v2's error envelope carries the code as externalCode and/or internalCode ([3P] TS clients read
# ``externalCode || internalCode``); v1's as statusCode or errorCode.
_REFUND_CODE_FIELDS = ("statusCode", "errorCode", "externalCode", "internalCode")
_REFUND_MESSAGE_FIELDS = ("errorMessageEn", "statusMessage", "errorMessage")
_REFUND_ANSWER_FIELDS = ("refundTrxID", "refundTrxId", "refundTransactions", "originalTrxID",
                         "originalTrxId")


def classify_refund(operation: str, code: str, message: str,
                    payment_id: str | None = None) -> BkashError:
    """A refund or refund-status error code as the typed error the refund caller handles."""
    code = str(code).strip()
    if code in REFUND_RETRYABLE_CODES:
        return BkashRetryableError(operation, message, code=code, payment_id=payment_id)
    for codes, cls in _REFUND_CLASSES:
        if code in codes:
            return cls(operation, f"{message} ({REFUND_WHAT_TO_DO[code]})".strip(), code=code,
                       payment_id=payment_id)
    fix = REFUND_MERCHANT_CONFIG_FIXES.get(code) or MERCHANT_CONFIG_FIXES.get(code)
    if fix:
        return BkashRefundMerchantConfig(operation, f"{message} ({fix})".strip(), code=code,
                                         payment_id=payment_id)
    return BkashUnexpectedResponse(operation, message or "undocumented error", code=code,
                                   payment_id=payment_id)


def _known_refund_code(code: str) -> bool:
    return code in REFUND_RETRYABLE_CODES or code in REFUND_MERCHANT_CONFIG_FIXES \
        or code in MERCHANT_CONFIG_FIXES or any(code in codes for codes, _ in _REFUND_CLASSES)


def raise_for_refund_error(data: dict[str, Any], operation: str, payment_id: str | None) -> None:
    """Refund answers come in three envelopes: the usual statusCode/statusMessage, the refund
    envelope errorCode/errorMessageEn/errorMessageBn (production.md §1), and v2's
    internalCode/externalCode/errorMessageEn/errorMessageBn (bkash-api.md §9). v2's success answer
    carries no statusCode at all, so an answer without any code is a success; its shape is then
    checked by the caller's model."""
    codes = [str(data[f]).strip() for f in _REFUND_CODE_FIELDS
             if data.get(f) not in (None, "") and not (f == "statusCode"
                                                       and str(data[f]) == STATUS_SUCCESS)]
    if not codes:
        if "message" in data and not any(k in data for k in _REFUND_ANSWER_FIELDS):
            # gateway text, not bKash's answer (§2.2)
            raise BkashNoResponse(operation, "gateway answered without a bKash status",
                                  payment_id=payment_id)
        return
    code = next((c for c in codes if _known_refund_code(c)), codes[0])
    message = next((str(data[f]) for f in _REFUND_MESSAGE_FIELDS if data.get(f)), "")
    raise classify_refund(operation, code, message, payment_id)
