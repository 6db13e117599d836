"""Monetix activities: each method one Gate call (or the Payment Page link, which needs the secret
key and so cannot be built in workflow code). Errors become ``ApplicationError``s typed by their kind;
the workflows' retry policies decide what is retried."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.accounts import AccountClients
from activities.heartbeat import heartbeating
from contracts.monetix_status import CODE_TRANSACTION_NOT_FOUND
from contracts.money import format_bdt
from contracts.refunds import (
    MonetixRefundCall,
    MonetixRefundStatusCall,
    ProviderRefundResult,
    RefundActivity,
    RefundErrorKind,
    RefundStage,
)

from providers.monetix import (
    MonetixDuplicatePayment,
    MonetixDuplicateRefund,
    MonetixError,
    MonetixGateClient,
    MonetixInvalidRequest,
    MonetixPaymentNotFound,
    MonetixPaymentPageConfig,
    MonetixRefundOperation,
    MonetixRefundOverLimit,
    MonetixRefunds,
    MonetixRequestRejected,
    MonetixStatus,
    build_payment_page_url,
    epay_widget_params,
)
from providers.monetix.refunds import NOT_REFUNDABLE_CODES, TRY_AGAIN_CODES
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
    def __init__(self, client: MonetixGateClient | Mapping[str, MonetixGateClient],
                 payment_page: MonetixPaymentPageConfig | Mapping[str, MonetixPaymentPageConfig]
                 | None = None) -> None:
        """The default account's Gate client and Payment Page settings, or one per merchant account
        (each its own Monetix project and key)."""
        self._accounts = AccountClients("Monetix", client)
        self._client = self._accounts.default
        self._pages = AccountClients("Monetix Payment Page", payment_page if isinstance(
            payment_page, Mapping) else {} if payment_page is None else payment_page)

    @activity.defn(name=MonetixActivity.SALE)
    @heartbeating
    async def monetix_sale(self, inp: SaleInput) -> SaleAck:
        """Send the sale once. A retry follows an attempt whose result is unknown, so it first asks
        Monetix (the status request, ≥ 10 s after the sale by the retry policy) and sends only if the
        payment was never registered (§3.3: resolve by status, never by a blind re-send)."""
        payment_id = inp.sale.payment_id
        client = self._accounts.get(inp.account_id, first_call=True)
        try:
            if activity.info().attempt > 1:
                try:
                    known = await client.status(payment_id)
                    return SaleAck(payment_id=payment_id, known_status=known.status)
                except MonetixPaymentNotFound:
                    pass
            try:
                ack = await client.sale(inp.sale, inp.callback_url)
            except MonetixDuplicatePayment:
                known = await client.status(payment_id)
                return SaleAck(payment_id=payment_id, known_status=known.status)
            return SaleAck(payment_id=payment_id, request_id=ack.request_id)
        except MonetixError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=MonetixActivity.CLARIFICATION)
    @heartbeating
    async def monetix_clarification(self, inp: ClarificationInput) -> str:
        """Send the clarification (transaction ID or requested fields) at most once: a retry first
        checks whether Monetix has moved on from the statuses that needed it. Returns how it ended:
        "sent" or "already received"."""
        client = self._accounts.get(inp.account_id)
        try:
            if activity.info().attempt > 1 and inp.pending_statuses:
                current = await client.status(inp.payment_id)
                if current.status not in inp.pending_statuses:
                    return "already received"
            if inp.fields:
                await client.clarify_fields(inp.payment_id, inp.fields)
            else:
                await client.clarification(inp.payment_id, inp.additional_data)
            return "sent"
        except MonetixError as err:
            raise _to_application_error(err) from None

    @activity.defn(name=MonetixActivity.STATUS)
    @heartbeating
    async def monetix_status(self, poll: StatusPoll) -> MonetixStatus:
        """One status request. While the payment is not yet where the workflow waits for it, raise a
        retryable error: Temporal's retry policy is the polling loop, with its backoff."""
        client = self._accounts.get(poll.account_id)
        try:
            status = await client.status(poll.payment_id)
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
        if not self._pages.clients:
            raise ApplicationError("Monetix Payment Page is not configured on this worker "
                                   "(MONETIX_PROJECT_ID / MONETIX_SECRET_KEY)",
                                   type=MonetixErrorKind.NOT_CONFIGURED, non_retryable=True)
        page = self._pages.get(inp.account_id, first_call=True)
        params = inp.params.model_copy(update={"merchant_callback_url": inp.callback_url})
        return PaymentPageLink(url=build_payment_page_url(page, params),
                               widget_params=epay_widget_params(page, params))

    # -- refunds (reference §3.6) -----------------------------------------------------------------

    @activity.defn(name=RefundActivity.MONETIX_REFUND)
    @heartbeating
    async def monetix_refund(self, call: MonetixRefundCall) -> ProviderRefundResult:
        """Send the refund once; answer REFUNDING with its ``request_id`` (the result comes by
        callback, or by :meth:`monetix_refund_status`).

        A retry follows an attempt without a clear answer, so it first asks the status request
        whether the refund is registered and returns it (``reconciled``) if so. When our refund
        cannot be told apart there, the refund is sent again: its ``merchant_refund_id`` makes Monetix
        answer 3230 if the first attempt was registered after all, and 3230 is resolved by status,
        never sent again. So Monetix holds at most one refund per refund id.
        """
        known = _known_operation_ids(call)
        if activity.info().attempt > 1:
            refunds = await self._refunds(call)
            found = _find(refunds, call.refund_id, call.amount_poisha, None, known)
            if found is not None:
                return _refund_result(found, reconciled=True,
                                      detail="found by the status request after an attempt without an answer")
        try:
            ack = await self._accounts.get(call.account_id).refund(call.payment_id, call.amount_poisha, call.currency,
                                            call.description, call.refund_id, call.callback_url)
        except MonetixDuplicateRefund:
            return await self._registered_already(call, known)
        except MonetixRefundOverLimit as err:
            raise _refund_error(RefundErrorKind.OVER_LIMIT, err) from None
        except MonetixRequestRejected as err:
            raise _refund_error(_rejection_kind(err), err) from None
        except MonetixInvalidRequest as err:
            raise _refund_error(RefundErrorKind.MERCHANT_CONFIG, err) from None
        except MonetixError as err:  # result unknown: 5xx, timeout, dropped connection, garbage
            raise _refund_error(RefundErrorKind.RESULT_UNKNOWN, err) from None
        return ProviderRefundResult(
            status=RefundStage.REFUNDING, request_id=ack.request_id,
            detail=f"Monetix accepted the refund of {format_bdt(call.amount_poisha)} BDT of payment "
                   f"{call.payment_id}; the result comes by callback")

    @activity.defn(name=RefundActivity.MONETIX_REFUND_STATUS)
    @heartbeating
    async def monetix_refund_status(self, call: MonetixRefundStatusCall) -> ProviderRefundResult:
        """One status request: SUCCEEDED / FAILED once the refund operation is final. While it is
        still processing, or not yet to be seen, raise a retryable BENIGN error: Temporal's retry
        policy is the polling loop, with its backoff.

        A refund that is not in the status answer is reported FAILED ("not registered at Monetix")
        only when the caller says it may never have been registered (``not_found_is_final``): after an
        acknowledgement or a 3230 it *is* registered, and calling it failed could invite a second
        refund of the same money under another refund id.
        """
        refunds = await self._refunds(call)
        found = _find(refunds, call.refund_id, call.amount_poisha, call.request_id,
                      _known_operation_ids(call))
        if found is None:
            if call.not_found_is_final:
                return ProviderRefundResult(
                    status=RefundStage.FAILED, request_id=call.request_id,
                    detail=f"refund {call.refund_id} of payment {call.payment_id} is not registered at "
                           f"Monetix ({len(refunds.refunds)} refund operation(s), none of them this one); "
                           "nothing was refunded")
            raise ApplicationError(
                f"refund {call.refund_id} of Monetix payment {call.payment_id} is not in the status "
                "answer yet; asking again", type=STILL_PROCESSING, category=ApplicationErrorCategory.BENIGN)
        if not found.final:
            raise ApplicationError(
                f"Monetix refund {call.refund_id} of payment {call.payment_id} is still {found.status!r}",
                type=STILL_PROCESSING, category=ApplicationErrorCategory.BENIGN)
        return _refund_result(found, reconciled=False)

    async def _refunds(self, call: MonetixRefundCall | MonetixRefundStatusCall) -> MonetixRefunds:
        """The status request read for refunds; every failure to learn is RESULT_UNKNOWN (retryable)
        but a signed "no such payment" and a request we refused to send."""
        payment_id, refund_id = call.payment_id, call.refund_id
        client = self._accounts.get(call.account_id)
        try:
            return await client.refund_status(payment_id)
        except MonetixPaymentNotFound as err:
            raise _refund_error(RefundErrorKind.NOT_REFUNDABLE, err) from None
        except MonetixInvalidRequest as err:
            raise _refund_error(RefundErrorKind.MERCHANT_CONFIG, err) from None
        except MonetixError as err:
            raise ApplicationError(
                f"could not learn from Monetix whether refund {refund_id} of payment {payment_id} is "
                f"registered: {err}; the next attempt asks again and sends nothing blindly",
                {"code": getattr(err, "code", None)}, type=RefundErrorKind.RESULT_UNKNOWN) from None

    async def _registered_already(self, call: MonetixRefundCall,
                                  known: Collection[str] | None) -> ProviderRefundResult:
        """3230: Monetix holds a refund with this merchant_refund_id. Find it; never send again."""
        refunds = await self._refunds(call)
        found = _find(refunds, call.refund_id, call.amount_poisha, None, known)
        if found is not None:
            return _refund_result(found, reconciled=True,
                                  detail="Monetix already held this refund (3230); found by the status request")
        if not refunds.refunds or known is not None:
            # This payment has no refund that could be it: the id was used elsewhere in the project.
            raise ApplicationError(
                f"Monetix refused refund {call.refund_id} of payment {call.payment_id}: merchant_refund_id "
                f"{call.refund_id} is already used (code 3230), but not by a refund of this payment; "
                "refund ids must be unique within the Monetix project: use another refund id",
                {"code": "3230"}, type=RefundErrorKind.MERCHANT_CONFIG, non_retryable=True)
        return ProviderRefundResult(
            status=RefundStage.REFUNDING, reconciled=True,
            detail=f"Monetix already holds refund {call.refund_id} (3230) but its operation cannot be told "
                   "apart in the status answer; the result comes by callback (payment.merchant_refund_id)")


def _known_operation_ids(call: MonetixRefundCall | MonetixRefundStatusCall) -> Collection[str] | None:
    # The refund operations the refunds ledger already accounts for (None: not told). Read with
    # getattr until contracts.refunds carries the field on both calls.
    known = call.known_operation_ids
    return None if known is None else frozenset(known)


def _find(refunds: MonetixRefunds, refund_id: str, amount_poisha: int, request_id: str | None,
          known: Collection[str] | None) -> MonetixRefundOperation | None:
    return refunds.find(request_id=request_id, merchant_refund_id=refund_id, amount_poisha=amount_poisha,
                        known_operation_ids=known)


def _refund_result(op: MonetixRefundOperation, *, reconciled: bool, detail: str = "") -> ProviderRefundResult:
    if op.succeeded:
        status = RefundStage.SUCCEEDED
        what = f"Monetix refunded {format_bdt(op.amount_poisha)} BDT" if op.amount_poisha is not None \
            else "Monetix refunded it"
    elif op.failed:
        status = RefundStage.FAILED
        what = f"Monetix declined the refund (code {op.code or '-'}: {op.message or op.status})"
    else:
        status, what = RefundStage.REFUNDING, f"Monetix is processing the refund ({op.status})"
    return ProviderRefundResult(status=status, provider_refund_id=op.id, amount_poisha=op.amount_poisha,
                                request_id=op.request_id, reconciled=reconciled,
                                detail="; ".join(x for x in (what, detail) if x))


def _rejection_kind(err: MonetixRequestRejected) -> RefundErrorKind:
    codes = {err.code, *(e.get("code") for e in err.errors)}
    if codes & TRY_AGAIN_CODES:
        return RefundErrorKind.RETRYABLE
    if codes & NOT_REFUNDABLE_CODES:
        return RefundErrorKind.NOT_REFUNDABLE
    # Signature, project, method or permission: refunds are enabled per project (§3.6).
    return RefundErrorKind.MERCHANT_CONFIG


_RETRYABLE_KINDS = frozenset({RefundErrorKind.RESULT_UNKNOWN, RefundErrorKind.RETRYABLE})


def _refund_error(kind: RefundErrorKind, err: MonetixError) -> ApplicationError:
    # str(err) says what happened to which payment and what to do; the client scrubs the secret key
    # and the signature from anything the platform echoes.
    return ApplicationError(str(err), {"code": getattr(err, "code", None)}, type=kind,
                            non_retryable=kind not in _RETRYABLE_KINDS)
