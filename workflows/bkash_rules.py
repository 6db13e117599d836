"""The bKash lifecycle's rules that are not steps: retry policies, bKash's status → stage, patch
ids, the payerReference. Read with workflows/bkash.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from contracts.bkash import BkashErrorKind, BkashStage, TransactionStatus
from contracts.notifications import EventType

# create: a lost create answer only leaves an unpaid Initiated payment at bKash, so retrying is
# safe; what the merchant must fix is not retried.
CREATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=[BkashErrorKind.MERCHANT_CONFIG, BkashErrorKind.CUSTOMER_DECLINED,
                               BkashErrorKind.INVALID_STATE, BkashErrorKind.ALREADY_SETTLED,
                               BkashErrorKind.UNEXPECTED_RESPONSE])
# execute moves money: never re-sent blindly. No answer → Query Payment, the one case in which bKash
# allows query (reference §12, kapilpaul/bKash-woocommerce#13).
EXECUTE_ONCE = RetryPolicy(maximum_attempts=1)
# query, capture and void: until bKash gives a final answer; the capture/void activity asks bKash
# before every retry, so nothing is captured twice.
UNTIL_FINAL = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=5), maximum_attempts=0)

# bKash's transactionStatus → where the payment stands (reference §10).
STAGE_FOR_STATUS = {
    TransactionStatus.AUTHORIZED: BkashStage.AUTHORIZED,
    TransactionStatus.COMPLETED: BkashStage.CAPTURED,
    TransactionStatus.CANCELLED: BkashStage.CANCELLED,
    TransactionStatus.FAILED: BkashStage.DECLINED,
}


# Issue 11 §3: an execute refused for want of a token waits for one and is sent then; payments
# recorded before this change (or replaying such a history) treated it as a lost answer (query).
EXECUTE_WAITS_FOR_TOKEN = "execute-waits-for-token"

# The stages the merchant's order system is told of (issue 13 §1), with the event each sends.
EVENT_FOR_STAGE = {
    BkashStage.AWAITING_APPROVAL: EventType.BKASH_AWAITING_APPROVAL,
    BkashStage.AUTHORIZED: EventType.BKASH_AUTHORIZED,
    BkashStage.CAPTURED: EventType.BKASH_CAPTURED,
    BkashStage.VOIDED: EventType.BKASH_VOIDED,
    BkashStage.DECLINED: EventType.BKASH_DECLINED,
    BkashStage.CANCELLED: EventType.BKASH_CANCELLED,
    BkashStage.EXPIRED: EventType.BKASH_EXPIRED,
    BkashStage.FAILED: EventType.BKASH_FAILED,
}


def retry_delay(err: ActivityError) -> timedelta:
    """The wait the activity asked for (the token budget's next opening), 2 s to 5 min."""
    cause = err.cause
    asked = cause.next_retry_delay if isinstance(cause, ApplicationError) else None
    return min(max(asked or timedelta(seconds=5), timedelta(seconds=2)), timedelta(minutes=5))


def payer_reference(invoice_number: str) -> str:
    # payerReference is free text at bKash (§4.1); we avoid personal data (no wallet numbers) and use
    # a safe form of the invoice.
    safe = "".join(c if c.isalnum() else "-" for c in invoice_number)[:50]
    return f"inv-{safe}"
