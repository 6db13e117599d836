"""The pack's "Error Code Implementation" table, read off the project's own mapping.

Each code's class comes from calling ``providers.bkash_errors.classify`` / ``classify_refund`` on
it, so the table cannot drift from what the client does; what each class leads to is the workflows'
rule (workflows/bkash.py, workflows/refunds.py, activities/bkash.py), said once per class below.
"""

from __future__ import annotations

from providers import bkash_codes as c
from providers.bkash_errors import (
    BkashAlreadySettled,
    BkashCustomerDeclined,
    BkashError,
    BkashInvalidState,
    BkashMerchantConfigError,
    BkashRefundAlreadyRefunded,
    BkashRefundMerchantConfig,
    BkashRefundNotRefundable,
    BkashRefundOverLimit,
    BkashRefundWindowPassed,
    BkashRetryableError,
    classify,
    classify_refund,
)
from sandbox.bkash.codes import MESSAGES

# bKash's texts (bkash-api.md §11, the portal's list) for mapped codes the sandbox never answers,
# so it keeps no text for them.
_MORE_MESSAGES = {
    "2012": "Invalid Receiver MSISDN",
    "2013": "Resend Limit Exceeded",
    "2016": "Wrong verification code",
    "2017": "Wrong verification limit exceeded",
    "2018": "OTP verification time expired",
    "2019": "PIN verification time expired",
    "2026": "The reversal amount cannot be greater than the original transaction amount",
    "2028": "Reverse failed because the transaction serial number does not exist",
    "2034": "The transaction cannot be reversed because the original transaction has been reversed",
    "2035": "Reverse failed because the initiator has no permission to reverse the transaction",
    "2042": "Reverse failed because the initiator has no permission to reverse the transaction.",
    "2057": "Not a bKash Account",
    "2058": "Not a Customer Wallet",
    "2059": "Multiple OTP request for a single session denied",
    "2064": "This product mode currently unavailable",
    "2067": "Invalid permission",
    "2116": "The agreement execution has already been completed",
    "2118": "The Platform value is invalid",
}

# What the project does with each class: a short label for the table, and the rule behind it.
PAYMENT_ACTIONS: dict[type[BkashError], tuple[str, str]] = {
    BkashRetryableError: (
        "retried",
        "create, query, capture and void are retried by Temporal's retry policy, and every "
        "capture/void retry asks Query Payment first, so nothing is captured twice; execute is "
        "never sent twice: its error is treated as no answer and resolved by Query Payment"),
    BkashAlreadySettled: (
        "resolved by query",
        "never failed blindly and never sent again: Query Payment says what bKash holds and the "
        "payment follows it (Completed → CAPTURED, Cancelled → VOIDED/CANCELLED)"),
    BkashCustomerDeclined: (
        "declined, no retry",
        "the customer's wallet, OTP, PIN or balance: the payment is DECLINED at once; no retry, "
        "no Query Payment"),
    BkashInvalidState: (
        "waits, or resolved by query",
        "execute: bKash has not seen the customer's approval (an early or forged return), so the "
        "payment waits for the customer and EXPIRES at the end of the approval window; capture / "
        "void: Query Payment, retried while bKash still holds it Authorized"),
    BkashMerchantConfigError: (
        "failed, not retried",
        "merchant configuration or a malformed request: the payment FAILS with the fix named; "
        "retrying cannot help until someone changes it"),
}
REFUND_ACTIONS: dict[type[BkashError], tuple[str, str]] = {
    BkashRetryableError: (
        "retried (Refund Status first)",
        "the refund is retried, and every retry asks Refund Status first, so nothing is refunded "
        "twice; 2079 first gets one new token and one re-send"),
    BkashRefundOverLimit: ("refused, not retried", "more than bKash still holds refundable"),
    BkashRefundWindowPassed: ("refused, not retried", "past bKash's refund window (15 days)"),
    BkashRefundAlreadyRefunded: ("refused, not retried", "bKash says it was already reversed"),
    BkashRefundNotRefundable: ("refused, not retried",
                               "bKash does not hold a refundable transaction (voided, not "
                               "captured yet, or fully reversed)"),
    BkashRefundMerchantConfig: ("failed, not retried",
                                "sku, reason, trxID, paymentID or the account's permission: "
                                "fix, then refund again"),
}
# Answers that carry no bKash code (providers/bkash.py, providers/bkash_tokens.py).
WITHOUT_A_CODE = (
    ("HTTP 401 (gateway)", "the token is replaced once (grant or refresh) and the call re-sent: "
     "the gateway answered before bKash ran; a second 401 fails the payment (check "
     "BKASH_APP_KEY)"),
    ("HTTP 403 (gateway)", "failed, not retried: the X-App-Key does not match the token's app"),
    ("timeout (30 s), dropped connection, HTTP 5xx, no JSON",
     "no reliable answer: execute → Query Payment (Initiated: a new payment; Authorized: go on); "
     "capture/void retried, Query Payment before each retry; refund → Refund Status before any "
     "re-send"),
    ("HTTP 429 on grant/refresh, or the two token calls of the hour spent",
     "the call is not sent (no token): it waits for a token and is sent then; never counted as a "
     "lost answer"),
    ("a code not listed here", "unexpected answer: create fails; execute → Query Payment; "
     "capture/void retried after Query Payment; refund retried after Refund Status"),
)

PAYMENT_CODES = sorted(c.RETRYABLE_CODES | c.ALREADY_SETTLED_CODES | c.CUSTOMER_DECLINE_CODES
                       | c.INVALID_STATE_CODES | c.MERCHANT_CONFIG_CODES, key=lambda s: int(s))
REFUND_CODES = sorted(c.REFUND_RETRYABLE_CODES | c.REFUND_OVER_LIMIT_CODES | c.REFUND_WINDOW_CODES
                      | c.REFUND_ALREADY_REFUNDED_CODES | c.REFUND_NOT_REFUNDABLE_CODES
                      | c.REFUND_MERCHANT_CONFIG_CODES, key=lambda s: int(s))


def message(code: str) -> str:
    return MESSAGES.get(code) or _MORE_MESSAGES.get(code, "")


def _action(err: BkashError, actions: dict[type[BkashError], tuple[str, str]]) -> tuple[str, str]:
    # Most specific class first: BkashRefundMerchantConfig is a BkashMerchantConfigError.
    for cls in sorted(actions, key=lambda k: -len(k.__mro__)):
        if isinstance(err, cls):
            return actions[cls]
    return "unexpected", "treated as an unexpected answer"


def payment_action(err: BkashError) -> str:
    label, _ = _action(err, PAYMENT_ACTIONS)
    fix = c.MERCHANT_CONFIG_FIXES.get(err.code or "")
    return f"{label}: {fix}" if fix and isinstance(err, BkashMerchantConfigError) else label


def refund_action(err: BkashError) -> str:
    label, _ = _action(err, REFUND_ACTIONS)
    code = err.code or ""
    what = c.REFUND_WHAT_TO_DO.get(code) or c.REFUND_MERCHANT_CONFIG_FIXES.get(code) \
        or c.MERCHANT_CONFIG_FIXES.get(code)
    return f"{label}: {what}" if what and not isinstance(err, BkashRetryableError) else label


def handled(err: BkashError) -> str:
    """What the project made of an error it met in this run: class, code and action."""
    refund = err.operation in ("refund", "refund status")
    action = refund_action(err) if refund else payment_action(err)
    return f"{type(err).__name__} ({err.code or 'no code'}) → {action}"


def table_rows() -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """(code, bKash's message, class, what the project does) for payment calls and for refunds."""
    payments = [(code, message(code), type(err).__name__, payment_action(err))
                for code in PAYMENT_CODES for err in [classify("execute", code, "")]]
    refunds = [(code, message(code), type(err).__name__, refund_action(err))
               for code in REFUND_CODES for err in [classify_refund("refund", code, "")]]
    return payments, refunds
