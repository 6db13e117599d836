"""bKash activities: each method is one provider step, mapping provider errors to typed
``ApplicationError``s whose ``type`` is the error's kind. The workflow's retry policies decide what
is retried; activities never decide the payment's lifecycle."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

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
    TransactionStatus,
    CreatedPaymentInfo,
    CreatePaymentInput,
    PaymentRef,
    ProviderPaymentStatus,
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
    def __init__(self, client: BkashClient) -> None:
        self._client = client

    @activity.defn(name=BkashActivity.CREATE_PAYMENT)
    async def create_payment(self, inp: CreatePaymentInput) -> CreatedPaymentInfo:
        try:
            created = await self._client.create_payment(
                amount_poisha=inp.amount_poisha, invoice_number=inp.invoice_number,
                payer_reference=inp.payer_reference, callback_url=inp.callback_url)
        except BkashError as err:
            raise _to_application_error(err) from None
        signature = None
        if created.success_callback_url:
            signature = parse_qs(urlsplit(created.success_callback_url).query).get(
                "signature", [None])[-1]
        return CreatedPaymentInfo(payment_id=created.payment_id, bkash_url=created.bkash_url,
                                  redirect_signature=signature)

    @activity.defn(name=BkashActivity.EXECUTE_PAYMENT)
    async def execute_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        try:
            return _status(await self._client.execute_payment(ref.payment_id))
        except BkashError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=BkashActivity.QUERY_PAYMENT)
    async def query_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        try:
            return _status(await self._client.query_payment(ref.payment_id), reconciled=True)
        except BkashError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=BkashActivity.CAPTURE_PAYMENT)
    async def capture_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return await self._settle(ref, "capture")

    @activity.defn(name=BkashActivity.VOID_PAYMENT)
    async def void_payment(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return await self._settle(ref, "void")

    async def _settle(self, ref: PaymentRef, operation: str) -> ProviderPaymentStatus:
        """Capture or void exactly once.

        A retry follows an attempt whose outcome may be unknown (timeout, lost answer, worker
        crash), so every retry asks bKash first and only sends the call while the payment is still
        Authorized (reference §12, "Capture/void ... On timeout → Query"). Already-settled and
        wrong-state answers are reconciled by query, never failed blindly.
        """
        call = self._client.capture_payment if operation == "capture" else self._client.void_payment
        try:
            if activity.info().attempt > 1:
                current = await self._client.query_payment(ref.payment_id)
                if current.transaction_status != TransactionStatus.AUTHORIZED:
                    return _status(current, reconciled=True)
            try:
                return _status(await call(ref.payment_id))
            except (BkashAlreadySettled, BkashInvalidState) as err:
                current = await self._client.query_payment(ref.payment_id)
                if current.transaction_status == TransactionStatus.AUTHORIZED:
                    raise err  # bKash still holds it: let the retry policy try again
                return _status(current, reconciled=True)
        except BkashError as err:
            raise _to_application_error(err) from None
