"""The codes and fixed values bKash defines, each named here once.

Sources: ../shared/reference/bkash-api.md §4.1 (mode), §10 (statusCode) and §11 (the portal's error
list, the retry classes of a 2026 TS client, the issue's own classification). Every code in the
portal's list that the Auth & Capture checkout can meet lands in exactly one class below.
``sandbox/`` keeps its own tables on purpose: it is bKash's stand-in, not a user of this client.
"""

from __future__ import annotations

STATUS_SUCCESS = "0000"  # statusCode of every successful answer; anything else is an error (§10)
MODE_CHECKOUT_URL = "0011"  # create: checkout URL without agreement, the mode of Auth & Capture (§4.1)

# Transient, the same call may be made again: 2003 "Process failed", 2020 and 2024 "Exception
# occurred", 503 "System is undergoing maintenance".
RETRYABLE_CODES = frozenset({"2003", "2020", "2024", "503"})

# Already executed/captured/voided: reconcile by query, never fail blindly.
PAYMENT_ALREADY_COMPLETED = "2062"  # execute repeated on a completed payment ([OBS])
TRANSACTION_ALREADY_COMPLETED = "2068"
TRANSACTION_ALREADY_CANCELLED = "2069"
AGREEMENT_EXECUTION_ALREADY_COMPLETED = "2116"
PAYMENT_EXECUTION_ALREADY_COMPLETED = "2117"
AUTHORIZED_PAYMENT_ALREADY_PROCESSED = "2119"  # capture/void on a captured/voided authorization
ALREADY_SETTLED_CODES = frozenset({
    PAYMENT_ALREADY_COMPLETED, TRANSACTION_ALREADY_COMPLETED, TRANSACTION_ALREADY_CANCELLED,
    AGREEMENT_EXECUTION_ALREADY_COMPLETED, PAYMENT_EXECUTION_ALREADY_COMPLETED,
    AUTHORIZED_PAYMENT_ALREADY_PROCESSED,
})

# The customer's wallet, OTP, PIN, balance or account state: 2009-2019 (wallet, OTP, PIN), 2023
# insufficient balance, 2037/2038 debit party blocked, 2057-2059 not a customer wallet / OTP abuse.
INSUFFICIENT_BALANCE = "2023"
CUSTOMER_DECLINE_CODES = frozenset(
    {str(c) for c in range(2009, 2020)} | {INSUFFICIENT_BALANCE, "2037", "2038", "2057", "2058", "2059"}
)

# Execute/capture/void on a payment in the wrong state: ask bKash (query) and decide on what it
# reports (§11: "add 2056/2060 to query then decide").
INVALID_PAYMENT_STATE = "2056"
EXECUTION_PREREQUISITE_NOT_MET = "2060"  # execute before the customer approved on the bKash page
INVALID_STATE_CODES = frozenset({INVALID_PAYMENT_STATE, EXECUTION_PREREQUISITE_NOT_MET})

# Merchant configuration or request validation, with what a merchant's engineer has to change.
MERCHANT_CONFIG_FIXES = {
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
    "2063": f"mode must be '{MODE_CHECKOUT_URL}' for Auth & Capture checkout",
    "2064": "this product mode is not enabled for the merchant; ask bKash to enable Auth & Capture",
    "2065": "a mandatory field is missing from the request",
    "2067": "the merchant account lacks permission for this API; ask bKash",
    "2118": "the platform value was rejected",
}
MERCHANT_CONFIG_CODES = frozenset(MERCHANT_CONFIG_FIXES)

# --- Refund and refund status (bkash-api.md §9, §11; production.md §1) -------------------------
# The refund API's own codes 2071-2082 and 2127 come from a 3rd-party table (Bikiran.Payment.Bkash
# BkashErrorCodes.cs, §11); 2072's text and 2002 for a null paymentID are [OBS]. The reversal codes
# 2026/2028/2034/2035/2042 are the portal's own list (§11 [DOC]); the refund API may pass them on.
REFUND_STATUS_COMPLETED = "Completed"  # transactionStatus / refundTransactionStatus of a done refund
# [INF] no failed refund was ever logged; these read as "no money moved", anything else as pending.
REFUND_STATUS_FAILED = frozenset({"Failed", "Cancelled", "Declined", "Rejected"})

INVALID_PAYMENT_ID = "2002"      # refund status before any refund answers this too ([OFF] plugin)
REFUND_WINDOW_PASSED = "2071"    # "Refund after specified days not allowed" (15 days, production §1)
REFUND_AMOUNT_NOT_VALID = "2072"  # "Refund amount not valid": above what is left ([OBS] §9)
REFUND_INVALID_SKU = "2073"
REFUND_NOT_REVERSIBLE = "2074"   # "The transaction cannot be reversed"
REFUND_SKU_TOO_LONG = "2075"
REFUND_REASON_TOO_LONG = "2076"
REFUND_INVALID_TRX_ID = "2077"
REFUND_INVALID_REASON = "2078"
INVALID_APP_TOKEN = "2079"       # "Invalid app Token": bKash refused the token, not the refund
REFUND_IDENTITY_NOT_PERMITTED = "2080"
REFUND_PARTY_STATE_PROHIBITS = "2081"
REFUND_MERCHANT_NOT_PERMITTED = "2082"
TRANSACTION_NOT_YET_COMPLETED = "2127"  # still Initiated/Authorized at bKash: nothing to refund yet
REVERSAL_ABOVE_ORIGINAL = "2026"
REVERSAL_TRX_NOT_FOUND = "2028"
ALREADY_REVERSED = "2034"        # "... because the original transaction has been reversed"
REVERSAL_NOT_PERMITTED = "2035"
REVERSAL_NOT_PERMITTED_2 = "2042"

# Transient for a refund: the payment classes' retryable codes plus 2079 (the client replaces the
# token and re-sends once; if bKash still refuses it, a later attempt tries again).
REFUND_RETRYABLE_CODES = RETRYABLE_CODES | {INVALID_APP_TOKEN}
REFUND_OVER_LIMIT_CODES = frozenset({REFUND_AMOUNT_NOT_VALID, REVERSAL_ABOVE_ORIGINAL})
REFUND_WINDOW_CODES = frozenset({REFUND_WINDOW_PASSED})
# Only a text that says so means "already refunded": 2074's generic "cannot be reversed" does not
# (the sandbox answers it for a voided payment), so it is NOT_REFUNDABLE, which never claims that
# money went back to the customer.
REFUND_ALREADY_REFUNDED_CODES = frozenset({ALREADY_REVERSED})
# [INF] 2056/2069 are payment-side codes that, for a refund, can only mean the same as 2074/2127.
REFUND_NOT_REFUNDABLE_CODES = frozenset({REFUND_NOT_REVERSIBLE, TRANSACTION_NOT_YET_COMPLETED,
                                         INVALID_PAYMENT_STATE, TRANSACTION_ALREADY_CANCELLED})
# What bKash's refund refusals mean, said so that a merchant knows what to do next.
REFUND_WHAT_TO_DO = {
    REFUND_WINDOW_PASSED: "bKash refunds only transactions younger than its refund window "
                          "(15 days); refund the customer by other means",
    REFUND_AMOUNT_NOT_VALID: "the amount is more than bKash still holds refundable for this "
                             "transaction; check the refunds already made and refund at most the "
                             "remainder",
    REVERSAL_ABOVE_ORIGINAL: "the amount is more than the original transaction; refund at most "
                             "the remainder",
    REFUND_NOT_REVERSIBLE: "bKash will not reverse this transaction (voided, fully refunded or "
                           "not a reversible transaction); check it in the bKash merchant portal",
    TRANSACTION_NOT_YET_COMPLETED: "bKash does not hold this transaction as completed (not "
                                   "captured yet?); capture it first, or check it with Query "
                                   "Payment",
    INVALID_PAYMENT_STATE: "the payment is not in a refundable state at bKash; check it with "
                           "Query Payment",
    TRANSACTION_ALREADY_CANCELLED: "the payment was voided at bKash: no money to refund",
    ALREADY_REVERSED: "bKash reports the transaction as already reversed: nothing is left to "
                      "refund; check the refunds in the bKash merchant portal",
}
REFUND_MERCHANT_CONFIG_FIXES = {
    INVALID_PAYMENT_ID: "the paymentID is not one bKash issued to this merchant for the trxID",
    REFUND_INVALID_SKU: "send a non-empty sku (bKash requires it for every refund)",
    REFUND_SKU_TOO_LONG: "send a shorter sku",
    REFUND_REASON_TOO_LONG: "send a shorter reason",
    REFUND_INVALID_TRX_ID: "the trxID does not belong to this paymentID; refund the captured "
                           "payment's own trxID",
    REFUND_INVALID_REASON: "send a plain-text reason",
    REFUND_IDENTITY_NOT_PERMITTED: "the merchant account may not initiate refunds; ask bKash to "
                                   "enable the refund API",
    REFUND_PARTY_STATE_PROHIBITS: "the merchant account or the customer's wallet is in a state "
                                  "that blocks this refund; ask bKash",
    REFUND_MERCHANT_NOT_PERMITTED: "the merchant is not permitted to refund; ask bKash to enable "
                                   "the refund API",
    REVERSAL_TRX_NOT_FOUND: "bKash does not know the trxID; refund the captured payment's own "
                            "trxID",
    REVERSAL_NOT_PERMITTED: "the merchant account may not reverse transactions; ask bKash",
    REVERSAL_NOT_PERMITTED_2: "the merchant account may not reverse transactions; ask bKash",
}
REFUND_MERCHANT_CONFIG_CODES = frozenset(REFUND_MERCHANT_CONFIG_FIXES)
