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
