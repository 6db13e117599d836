"""bKash activities: each method is one provider step, mapping provider errors to typed
``ApplicationError``s whose ``type`` is the error's kind. The workflow's retry policies decide what
is retried; activities never decide the payment's lifecycle."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from temporalio import activity
from collections.abc import Mapping

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.accounts import AccountClients
from activities.heartbeat import heartbeating
from providers.bkash import BkashClient, PaymentStatus
from providers.bkash_errors import (
    BkashAlreadySettled,
    BkashCustomerDeclined,
    BkashError,
    BkashInvalidState,
)
from contracts.money import parse_bdt
from contracts.bkash import (
    BkashActivity,
    return_link_token,
    TransactionStatus,
    CreatedPaymentInfo,
    CreatePaymentInput,
    PaymentRef,
    ProviderPaymentStatus,
)
from contracts.money import format_bdt
from contracts.refunds import (
    BkashRefundCall,
    ProviderRefundResult,
    RefundActivity,
    RefundErrorKind,
    RefundStage,
)
from providers.bkash import RefundTransaction
from providers.bkash_errors import (
    REFUND_KINDS,
    BkashMerchantConfigError,
    BkashNoResponse,
    BkashRetryableError,
    BkashTokenRateLimited,
    BkashUnexpectedResponse,
)


def _to_application_error(err: BkashError) -> ApplicationError:
    # The message is ours plus bKash's statusMessage: neither carries tokens or secrets.
    # A customer's decline or a not-yet-approved payment is an expected answer, not an incident:
    # BENIGN keeps it out of the worker's error logs and failure metrics.
    benign = isinstance(err, (BkashCustomerDeclined, BkashInvalidState))
    return ApplicationError(str(err), {"code": err.code, "operation": err.operation},
                            type=err.kind, next_retry_delay=err.retry_after,
                            category=ApplicationErrorCategory.BENIGN if benign
                            else ApplicationErrorCategory.UNSPECIFIED)


def _status(s: PaymentStatus, *, reconciled: bool = False) -> ProviderPaymentStatus:
    amount = None
    if s.amount:
        try:
            amount = parse_bdt(s.amount)
        except ValueError:
            amount = None
    return ProviderPaymentStatus(payment_id=s.payment_id, transaction_status=s.transaction_status,
                                 trx_id=s.trx_id, amount_poisha=amount,
                                 reconciled_by_query=reconciled)


class BkashActivities:
    def __init__(self, client: BkashClient | Mapping[str, BkashClient], *,
                 link_secret: bytes) -> None:
        """``client``: the default account's, or one per merchant account (each its own token)."""
        self._accounts = AccountClients("bKash", client)
        self._client = self._accounts.default  # the default account's (tests reach its tokens)
        self._link_secret = link_secret

    @activity.defn(name=BkashActivity.CREATE_PAYMENT)
    @heartbeating
    async def create_payment(self, inp: CreatePaymentInput) -> CreatedPaymentInfo:
        # The result-link token is added here, in the worker, so that the workflow's input and
        # history carry the callback URL without it (an operator reading histories must not hold
        # every customer's result link). The workflow id is Temporal's, not the input's.
        token = return_link_token(self._link_secret, activity.info().workflow_id)
        client = self._accounts.get(inp.account_id, first_call=True)
        try:
            created = await client.create_payment(
                amount_poisha=inp.amount_poisha, invoice_number=inp.invoice_number,
                payer_reference=inp.payer_reference, callback_url=f"{inp.callback_url}/{token}")
        except BkashError as err:
            raise _to_application_error(err) from None
        signature = None
        if created.success_callback_url:
            signature = parse_qs(urlsplit(created.success_callback_url).query).get(
                "signature", [None])[-1]
        return CreatedPaymentInfo(payment_id=created.payment_id, bkash_url=created.bkash_url,
                                  redirect_signature=signature)

    @activity.defn(name=BkashActivity.EXECUTE_PAYMENT)
    @heartbeating
    async def execute_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        client = self._accounts.get(ref.account_id)
        try:
            return _status(await client.execute_payment(ref.payment_id))
        except BkashError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=BkashActivity.QUERY_PAYMENT)
    @heartbeating
    async def query_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        client = self._accounts.get(ref.account_id)
        try:
            return _status(await client.query_payment(ref.payment_id), reconciled=True)
        except BkashError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=BkashActivity.CAPTURE_PAYMENT)
    @heartbeating
    async def capture_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return await self._settle(ref, "capture")

    @activity.defn(name=BkashActivity.VOID_PAYMENT)
    @heartbeating
    async def void_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return await self._settle(ref, "void")

    async def _settle(self, ref: PaymentRef, operation: str) -> ProviderPaymentStatus:
        """Capture or void exactly once.

        A retry follows an attempt whose outcome may be unknown (timeout, lost answer, worker
        crash), so every retry asks bKash first and only sends the call while the payment is still
        Authorized (reference §12, "Capture/void ... On timeout → Query"). Already-settled and
        wrong-state answers are reconciled by query, never failed blindly.
        """
        client = self._accounts.get(ref.account_id)
        call = client.capture_payment if operation == "capture" else client.void_payment
        ambiguous = _an_earlier_attempt_may_have_reached_bkash()
        try:
            if ambiguous:
                current = await client.query_payment(ref.payment_id)
                if current.transaction_status != TransactionStatus.AUTHORIZED:
                    return _status(current, reconciled=True)
                ambiguous = False  # still Authorized: nothing of ours was applied
            try:
                return _status(await call(ref.payment_id))
            except (BkashAlreadySettled, BkashInvalidState) as err:
                current = await client.query_payment(ref.payment_id)
                if current.transaction_status == TransactionStatus.AUTHORIZED:
                    raise err  # bKash still holds it: let the retry policy try again
                return _status(current, reconciled=True)
        except BkashError as err:
            _remember_if_not_sent(err, ambiguous)
            raise _to_application_error(err) from None

    @activity.defn(name=RefundActivity.BKASH_REFUND)
    @heartbeating
    async def bkash_refund(self, call: BkashRefundCall) -> ProviderRefundResult:
        """Refund exactly once at bKash.

        A retry follows an attempt whose answer may be lost (timeout, dropped connection, a 5xx
        after bKash applied it, a worker killed mid-call), so every retry first asks refund
        status, and only when bKash holds no refund of ours is the refund sent. Refunds of one
        payment are serialized by the refunds workflow, so a completed refund beyond the ledger's
        ``known_refund_trx_ids`` with this amount is this one.
        """
        client = self._accounts.get(call.account_id)
        ambiguous = _an_earlier_attempt_may_have_reached_bkash()
        try:
            if ambiguous:
                found = await self._refund_found_at_bkash(call)
                if found is not None:
                    return found
                ambiguous = False  # bKash holds no refund of ours: nothing was applied
            refund = await client.refund_payment(
                payment_id=call.payment_id, trx_id=call.trx_id, amount_poisha=call.amount_poisha,
                sku=call.sku, reason=call.reason)
        except BkashError as err:
            _remember_if_not_sent(err, ambiguous)
            raise _refund_error(err, call) from None
        return _refund_outcome(refund, call)

    async def _refund_found_at_bkash(self, call: BkashRefundCall) -> ProviderRefundResult | None:
        """This refund as bKash holds it after a lost answer, or None if bKash never applied it."""
        status = await self._accounts.get(call.account_id).refund_status(
            payment_id=call.payment_id, trx_id=call.trx_id)
        known = set(call.known_refund_trx_ids)
        new = [r for r in status.refunds if r.refund_trx_id not in known and not r.failed]
        for r in new:
            if r.completed and r.amount_poisha == call.amount_poisha:
                return ProviderRefundResult(
                    status=RefundStage.SUCCEEDED, provider_refund_id=r.refund_trx_id,
                    amount_poisha=r.amount_poisha, reconciled=True,
                    detail=f"answer lost; bKash's refund status shows refund {r.refund_trx_id}")
        for r in new:
            if r.completed and r.amount_poisha is not None:
                activity.logger.info("bKash holds refund %s of %s BDT that the ledger does not "
                                     "know (made outside it?); not this refund", r.refund_trx_id,
                                     format_bdt(r.amount_poisha))
                continue
            if not r.completed and r.amount_poisha in (None, call.amount_poisha):
                raise _unknown(call, f"bKash holds refund {r.refund_trx_id} as "
                               f"{r.transaction_status!r}; asking refund status again before "
                               "anything is sent")
            if r.amount_poisha is None:
                raise _unknown(call, f"bKash's refund status lists refund {r.refund_trx_id} "
                               "without an amount, so it cannot tell whether it is this one; "
                               "check the transaction in the bKash merchant portal")
        return None


def _unknown(call: BkashRefundCall, why: str) -> ApplicationError:
    return ApplicationError(f"{_refund_name(call)}: {why}", type=RefundErrorKind.RESULT_UNKNOWN)


def _refund_name(call: BkashRefundCall) -> str:
    return (f"refund {call.refund_id} of {format_bdt(call.amount_poisha)} BDT for bKash payment "
            f"{call.payment_id}")


def _refund_outcome(refund: RefundTransaction, call: BkashRefundCall) -> ProviderRefundResult:
    amount = refund.amount_poisha if refund.amount_poisha is not None else call.amount_poisha
    if refund.completed:
        return ProviderRefundResult(status=RefundStage.SUCCEEDED,
                                    provider_refund_id=refund.refund_trx_id, amount_poisha=amount)
    if refund.failed:
        return ProviderRefundResult(status=RefundStage.FAILED,
                                    provider_refund_id=refund.refund_trx_id, amount_poisha=amount,
                                    detail=f"bKash reports refund {refund.refund_trx_id} as "
                                    f"{refund.transaction_status!r}; no money moved")
    # Accepted but not final: the next attempt reads refund status instead of sending again.
    raise _unknown(call, f"bKash accepted refund {refund.refund_trx_id} but reports it as "
                   f"{refund.transaction_status!r}; asking refund status before anything is sent")


# Issue 11 §3: a call we refused ourselves (no token) is not a lost answer, so the next attempt need
# not ask bKash first. An attempt that refused its call for want of a token, with nothing ambiguous
# before it, says so in its heartbeat details, which Temporal hands to the next attempt (they travel
# with the failed attempt); any other failure leaves the next attempt asking first, as before.
_ALL_UNSENT = {"all_attempts_unsent": True}


def _an_earlier_attempt_may_have_reached_bkash() -> bool:
    info = activity.info()
    if info.attempt == 1:
        return False
    details = info.heartbeat_details
    return not (details and details[-1] == _ALL_UNSENT)


def _remember_if_not_sent(err: BkashError, ambiguous: bool) -> None:
    if isinstance(err, BkashTokenRateLimited) and not ambiguous:
        activity.heartbeat(_ALL_UNSENT)


def _refund_error(err: BkashError, call: BkashRefundCall) -> ApplicationError:
    """A refund's provider error as the refunds contract's kind: refusals are final, a lost answer
    and bKash's transient answers are retried (and every retry asks refund status first)."""
    if isinstance(err, BkashNoResponse) and err.request_sent:
        kind, final = RefundErrorKind.RESULT_UNKNOWN, False
        todo = "the next attempt asks bKash's refund status before sending anything again"
    elif isinstance(err, BkashNoResponse):
        # Our own connection failed before the request left: not ambiguous.
        kind, final, todo = RefundErrorKind.RETRYABLE, False, "the request never reached bKash"
    elif err.kind in REFUND_KINDS:
        kind, final, todo = RefundErrorKind(err.kind), True, ""
    elif isinstance(err, BkashMerchantConfigError):
        kind, final, todo = RefundErrorKind.MERCHANT_CONFIG, True, ""
    elif isinstance(err, BkashUnexpectedResponse) and err.code is None:
        # An unreadable answer to a refund may follow a refund bKash applied.
        kind, final = RefundErrorKind.RESULT_UNKNOWN, False
        todo = "the next attempt asks bKash's refund status before sending anything again"
    else:
        # 503, 2003, 2079 after one new token, the token budget, an undocumented code: bKash did
        # not refund; retried later, after asking refund status.
        kind, final, todo = RefundErrorKind.RETRYABLE, False, "retried later"
        if not isinstance(err, (BkashRetryableError, BkashTokenRateLimited)):
            todo = "an undocumented bKash answer; retried later (check bKash's notices)"
    # The message is ours plus bKash's own text: neither carries tokens or secrets.
    return ApplicationError(f"{_refund_name(call)}: {err}" + (f"; {todo}" if todo else ""),
                            {"code": err.code, "operation": err.operation}, type=kind,
                            non_retryable=final, next_retry_delay=err.retry_after)
