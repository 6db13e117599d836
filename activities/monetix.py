"""Monetix activities: each method one Gate call (or the Payment Page link, which needs the secret
key and so cannot be built in workflow code). Errors become ``ApplicationError``s typed by their kind;
the workflows' retry policies decide what is retried."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from contracts.monetix_status import CODE_TRANSACTION_NOT_FOUND

from providers.monetix import (
    MonetixDuplicatePayment,
    MonetixError,
    MonetixGateClient,
    MonetixPaymentNotFound,
    MonetixPaymentPageConfig,
    MonetixStatus,
    build_payment_page_url,
    epay_widget_params,
)
from contracts.monetix import (
    MonetixActivity,
    MonetixErrorKind,
    ClarificationInput,
    PaymentPageLink,
    PaymentPageLinkInput,
    SaleAck,
    SaleInput,
    StatusPoll,
)

STILL_PROCESSING = MonetixErrorKind.STILL_PROCESSING


def _to_application_error(err: MonetixError) -> ApplicationError:
    # str(err) carries the platform's message, never the secret key or a signature (the client
    # scrubs both); the platform's code travels as a detail for the result.
    return ApplicationError(str(err), {"code": getattr(err, "code", None)}, type=err.kind)


class MonetixActivities:
    def __init__(self, client: MonetixGateClient,
                 payment_page: MonetixPaymentPageConfig | None = None) -> None:
        self._client = client
        self._payment_page = payment_page

    @activity.defn(name=MonetixActivity.SALE)
    async def monetix_sale(self, inp: SaleInput) -> SaleAck:
        """Send the sale once. A retry follows an attempt whose result is unknown, so it first asks
        Monetix (the status request, ≥ 10 s after the sale by the retry policy) and sends only if the
        payment was never registered (§3.3: resolve by status, never by a blind re-send)."""
        payment_id = inp.sale.payment_id
        try:
            if activity.info().attempt > 1:
                try:
                    known = await self._client.status(payment_id)
                    return SaleAck(payment_id=payment_id, known_status=known.status)
                except MonetixPaymentNotFound:
                    pass
            try:
                ack = await self._client.sale(inp.sale, inp.callback_url)
            except MonetixDuplicatePayment:
                known = await self._client.status(payment_id)
                return SaleAck(payment_id=payment_id, known_status=known.status)
            return SaleAck(payment_id=payment_id, request_id=ack.request_id)
        except MonetixError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=MonetixActivity.CLARIFICATION)
    async def monetix_clarification(self, inp: ClarificationInput) -> str:
        """Send the clarification (transaction ID or requested fields) at most once: a retry first
        checks whether Monetix has moved on from the statuses that needed it. Returns how it ended:
        "sent" or "already received"."""
        try:
            if activity.info().attempt > 1 and inp.pending_statuses:
                current = await self._client.status(inp.payment_id)
                if current.status not in inp.pending_statuses:
                    return "already received"
            if inp.fields:
                await self._client.clarify_fields(inp.payment_id, inp.fields)
            else:
                await self._client.clarification(inp.payment_id, inp.additional_data)
            return "sent"
        except MonetixError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=MonetixActivity.STATUS)
    async def monetix_status(self, poll: StatusPoll) -> MonetixStatus:
        """One status request. While the payment is not yet where the workflow waits for it, raise a
        retryable error: Temporal's retry policy is the polling loop, with its backoff."""
        try:
            status = await self._client.status(poll.payment_id)
        except MonetixPaymentNotFound as err:
            if poll.not_found_is_final:
                return MonetixStatus(payment_id=poll.payment_id, status="error", final=True,
                                     code=CODE_TRANSACTION_NOT_FOUND, message=err.platform_message)
            raise _to_application_error(err) from None
        except MonetixError as err:
            raise _to_application_error(err) from None
        if status.final or poll.accept_any or status.status in poll.wanted_statuses:
            return status
        raise ApplicationError(f"Monetix payment {poll.payment_id} is still {status.status!r}",
                               type=STILL_PROCESSING, category=ApplicationErrorCategory.BENIGN)

    @activity.defn(name=MonetixActivity.PAYMENT_PAGE_LINK)
    async def monetix_payment_page_link(self, inp: PaymentPageLinkInput) -> PaymentPageLink:
        if self._payment_page is None:
            raise ApplicationError("Monetix Payment Page is not configured on this worker "
                                   "(MONETIX_PROJECT_ID / MONETIX_SECRET_KEY)",
                                   type=MonetixErrorKind.NOT_CONFIGURED, non_retryable=True)
        params = inp.params.model_copy(update={"merchant_callback_url": inp.callback_url})
        return PaymentPageLink(url=build_payment_page_url(self._payment_page, params),
                               widget_params=epay_widget_params(self._payment_page, params))
