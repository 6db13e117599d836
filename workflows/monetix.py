"""Monetix bKash purchases (seed ../shared/seeds/003_2a4bc290b5abc9d3.txt).

MonetixGatePurchase, by Gate: sale → payment instructions (display_data) by callback → the customer
pays in bKash and types the transaction ID on the merchant's site → clarification request with the
transaction ID → final success/decline callback. PaymentPagePurchase: a signed Payment Page link →
the customer pays on Monetix's checkout page → final callback.

Callbacks arrive as updates from the merchant endpoint, which has verified their signatures. Their
update ids come from the callback's operation, so a duplicate is absorbed; a stale or out-of-order
callback is acknowledged (so Monetix stops re-sending) but never moves the state backwards. A final
answer that never comes by callback is fetched with the status request, polled with backoff by
Temporal's retry policy.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.monetix import MonetixActivities
    from providers.monetix import MonetixStatus, clarification_problems
    from providers.money import format_bdt
    from workflows import search_attributes as sa
    from workflows.monetix_models import (
        TRANSACTION_ID,
        CallbackAck,
        ClarificationAnswer,
        ClarificationInput,
        MonetixCallbackEvent,
        MonetixPurchaseRequest,
        MonetixPurchaseResult,
        MonetixPurchaseState,
        MonetixStage,
        MonetixTimelineEvent,
        PaymentInstructions,
        PaymentPageLinkInput,
        PaymentPagePurchaseRequest,
        SaleInput,
        StatusPoll,
        TransactionIdSubmission,
    )

_REJECTED = ["MonetixInvalidRequest", "MonetixRequestRejected", "MonetixDuplicatePayment",
             "MonetixNotConfigured"]
# Gate calls: the first retry comes ≥ 10 s later, because the activity then asks the status request
# and Monetix asks for at least 10 s between a request and its status (§3.4).
GATE_CALL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=2.0,
                              maximum_interval=timedelta(minutes=2), maximum_attempts=10,
                              non_retryable_error_types=_REJECTED)
# The status poll: until Monetix reports what we wait for, with backoff.
STATUS_POLL = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=1.5,
                          maximum_interval=timedelta(minutes=5), maximum_attempts=0,
                          non_retryable_error_types=["MonetixInvalidRequest",
                                                     "MonetixRequestRejected"])

STATUS_MIN_DELAY = timedelta(seconds=10)
AWAITING_CLARIFICATION = "awaiting clarification"
AWAITING_CUSTOMER = ("awaiting customer", "awaiting customer action")
# §4.3 statuses ranked by how far a payment has gone: a callback never moves the state back.
_RANK = {AWAITING_CLARIFICATION: 1, "awaiting customer": 2, "awaiting customer action": 2}
_FINAL_RANK = 9


def _rank(status: str, final: bool) -> int:
    return _FINAL_RANK if final else _RANK.get(status, 3)


class _MonetixPurchase:
    """What both interfaces share: callbacks, status polling, inspection and the result."""

    interface = "gate"

    def _setup(self, payment_id: str, amount: int, provider_timeout: timedelta) -> None:
        self._payment_id = payment_id
        self._provider_timeout = provider_timeout
        self._state = MonetixPurchaseState(workflow_id=workflow.info().workflow_id,
                                           payment_id=payment_id, interface=self.interface,
                                           stage=MonetixStage.SALE, requested_amount=amount)
        self._rank = 0
        self._final: MonetixStatus | None = None
        self._detail = ""
        # §3.4: the status request must not come earlier than 10 s after the request it is about.
        self._status_allowed_at = workflow.now() + STATUS_MIN_DELAY

    @workflow.query
    def state(self) -> MonetixPurchaseState:
        return self._state

    @workflow.update
    def provider_callback(self, event: MonetixCallbackEvent) -> CallbackAck:
        """A verified Monetix callback, from the merchant endpoint."""
        applied = self._apply(event.status, event.clarification_fields, "callback")
        return CallbackAck(applied=applied, stage=self._state.stage,
                           detail="" if applied else "stale or repeated callback ignored")

    @provider_callback.validator
    def _validate_callback(self, event: MonetixCallbackEvent) -> None:
        if event.payment_id != self._payment_id:
            raise ValueError(f"callback for payment {event.payment_id} routed to {self._payment_id}")

    def _apply(self, status: MonetixStatus, clarification_fields: dict[str, Any] | None,
               source: str) -> bool:
        rank = _rank(status.status, status.final)
        if self._final is not None or rank < self._rank:
            self._state.callbacks_ignored += source == "callback"
            self._event(f"{source} ignored: {status.status!r} after {self._state.stage.value}")
            return False
        self._rank = max(self._rank, rank)
        self._state.callbacks_applied += source == "callback"
        if status.display_data:
            self._state.display_data = list(status.display_data)
        if status.status == AWAITING_CLARIFICATION:
            self._state.clarification_fields = clarification_fields or {}
        if status.final:
            self._final = status
        self._event(f"{source}: payment {status.status!r}"
                    + (f", code {status.code} {status.message or ''}" if status.final else ""))
        return True

    async def _wait_or_poll(self, ready, wait: timedelta, wanted: list[str], why: str,
                            not_found_is_final: bool = False) -> None:
        """Wait ``wait`` for callbacks to make ``ready()`` true; then ask the status request, with
        backoff, until Monetix reports a wanted or final status (or a callback arrives)."""
        try:
            await workflow.wait_condition(lambda: ready() or self._final is not None,
                                          timeout=wait, timeout_summary=why)
            return
        except asyncio.TimeoutError:
            self._event(f"no callback within {wait}: polling the status request")
        if workflow.now() < self._status_allowed_at:
            try:
                await workflow.wait_condition(lambda: ready() or self._final is not None,
                                              timeout=self._status_allowed_at - workflow.now(),
                                              timeout_summary="10 s before a status request")
                return
            except asyncio.TimeoutError:
                pass
        poll = asyncio.ensure_future(workflow.execute_activity_method(
            MonetixActivities.monetix_status,
            StatusPoll(payment_id=self._payment_id, wanted_statuses=wanted,
                       not_found_is_final=not_found_is_final),
            start_to_close_timeout=self._provider_timeout + timedelta(seconds=5),
            retry_policy=STATUS_POLL, summary=f"status of {self._payment_id} ({why})"))
        await workflow.wait_condition(lambda: ready() or self._final is not None or poll.done())
        if poll.done():
            self._apply(poll.result(), None, "status")
        else:
            poll.cancel()
            try:
                await poll
            except (asyncio.CancelledError, ActivityError):
                pass

    def _result(self, requested: int) -> MonetixPurchaseResult:
        final = self._final
        if final is None:
            return MonetixPurchaseResult(payment_id=self._payment_id, outcome=MonetixStage.EXPIRED,
                                         requested_amount=requested, detail=self._detail)
        success = final.status == "success"
        paid = final.sum_amount if success else None
        return MonetixPurchaseResult(
            payment_id=self._payment_id,
            outcome=MonetixStage.SUCCESS if success else MonetixStage.DECLINED,
            requested_amount=requested,
            # §4.5: "the amount specified in the final callback is the actual sum of money you will
            # receive" — credit that, never the requested amount.
            paid_amount=paid, amount_changed=paid is not None and paid != requested,
            currency=final.sum_currency or "BDT",
            decline_code=None if success else final.code, decline_message=None if success
            else final.message, provider_payment_id=final.provider_payment_id,
            account_number=final.account_number, detail=self._detail)

    async def _finish(self, requested: int) -> MonetixPurchaseResult:
        result = self._result(requested)
        if result.outcome is MonetixStage.SUCCESS:
            self._detail = self._detail or (
                f"paid {format_bdt(result.paid_amount or 0)} BDT"
                + (f" (requested {format_bdt(requested)})" if result.amount_changed else ""))
        elif result.outcome is MonetixStage.DECLINED:
            self._detail = self._detail or f"declined: {result.decline_code} {result.decline_message}"
        result.detail = self._detail
        self._set_stage(result.outcome, self._detail)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _set_stage(self, stage: MonetixStage, event: str | None = None, *,
                   show: bool = True) -> None:
        """``show=False`` for a stage that lasts one bounded call: each search-attribute upsert is
        a billable action (README, "Performance")."""
        changed = stage is not self._state.stage
        self._state.stage = stage
        self._event(event or f"stage {stage.value}")
        if changed and show:
            updates = [sa.PAYMENT_STAGE.value_set(stage.value)]
            if self._final is not None and self._final.provider_payment_id:
                updates.append(sa.PROVIDER_PAYMENT_ID.value_set(self._final.provider_payment_id))
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(
            f"**{stage.value}** · Monetix {self.interface} · payment {self._payment_id} · "
            f"{format_bdt(self._state.requested_amount)} BDT\n\n{self._state.timeline[-1].event}")

    def _event(self, text: str) -> None:
        self._state.timeline.append(MonetixTimelineEvent(at=workflow.now(), stage=self._state.stage,
                                                         event=text))

    async def _final_or_expired(self) -> None:
        """A window ran out: one status request, so a payment that did complete is not lost."""
        if workflow.now() < self._status_allowed_at:
            await workflow.sleep(self._status_allowed_at - workflow.now(),
                                 summary="10 s before a status request")
        try:
            status = await workflow.execute_activity_method(
                MonetixActivities.monetix_status,
                StatusPoll(payment_id=self._payment_id, not_found_is_final=True, accept_any=True),
                start_to_close_timeout=self._provider_timeout + timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=3,
                                         initial_interval=timedelta(seconds=10)),
                summary=f"status of {self._payment_id} (window over)")
        except ActivityError:
            return  # Monetix unreachable: our side ends EXPIRED, the last error shows why
        if status.final and status.code != "3061":  # 3061: never registered, nothing to report
            self._apply(status, None, "status")

    def _record_error(self, err: ActivityError) -> None:
        self._state.last_error = _message(err)
        self._event(f"error: {self._state.last_error}")

    async def _stop_on_cancel(self) -> None:
        """An operator cancelled: stop waiting for the customer, but ask Monetix once so a payment
        that did complete is reported, not lost."""
        self._event(f"workflow cancelled by an operator during {self._state.stage.value}")
        if self._final is None:
            self._detail = "cancelled by an operator"
            await self._final_or_expired()

    def _instructions(self, payment_page_url: str | None = None) -> PaymentInstructions:
        return PaymentInstructions(workflow_id=self._state.workflow_id,
                                   payment_id=self._payment_id, stage=self._state.stage,
                                   display_data=self._state.display_data,
                                   clarification_fields=self._state.clarification_fields,
                                   payment_page_url=payment_page_url, detail=self._detail)


@workflow.defn
class MonetixGatePurchase(_MonetixPurchase):
    interface = "gate"

    @workflow.init
    def __init__(self, req: MonetixPurchaseRequest) -> None:
        self._req = req
        self._setup(req.sale.payment_id, req.sale.amount, req.provider_timeout)
        self._clarification_answer: ClarificationAnswer | None = None
        self._clarified = False
        self._transaction_id: str | None = None

    @workflow.run
    async def run(self, req: MonetixPurchaseRequest) -> MonetixPurchaseResult:
        try:
            if await self._sale():
                await self._payment_instructions()
                if self._final is None and self._state.display_data:
                    await self._transaction_id_and_clarification()
                if self._final is None and self._state.stage is MonetixStage.AWAITING_RESULT:
                    await self._final_result()
        except asyncio.CancelledError:
            await self._stop_on_cancel()
        return await self._finish(req.sale.amount)

    # -- merchant code and the customer --------------------------------------------------------

    @workflow.update
    async def payment_instructions(self) -> PaymentInstructions:
        """Update-with-start: the instructions to show the customer (or the fields Monetix asks
        for) in the same call that starts the purchase."""
        await workflow.wait_condition(
            lambda: self._state.stage in (MonetixStage.AWAITING_TRANSACTION_ID,
                                          MonetixStage.AWAITING_CLARIFICATION)
            or self._final is not None or self._state.stage.is_final)
        return self._instructions()

    @workflow.update
    def provide_clarification(self, answer: ClarificationAnswer) -> PaymentInstructions:
        self._clarification_answer = answer
        self._event(f"merchant answered the clarification: {sorted(answer.fields)}")
        return self._instructions()

    @provide_clarification.validator
    def _validate_clarification(self, answer: ClarificationAnswer) -> None:
        if (self._state.stage is not MonetixStage.AWAITING_CLARIFICATION
                or self._clarification_answer is not None):
            raise ValueError(f"payment {self._payment_id} is {self._state.stage.value}; Monetix "
                             "is not waiting for clarification data")
        missing = set(self._state.clarification_fields or {}) - set(answer.fields)
        if missing:
            raise ValueError(f"Monetix asked for {sorted(missing)}; the answer lacks them")
        # The workflow sends one answer; a malformed one must be refused here, not by Monetix later.
        problems = clarification_problems(answer.fields)
        if problems:
            raise ValueError("; ".join(problems))

    @workflow.update
    def submit_transaction_id(self, submission: TransactionIdSubmission) -> PaymentInstructions:
        self._accept_transaction_id(submission)
        return self._instructions()

    @submit_transaction_id.validator
    def _validate_transaction_id(self, submission: TransactionIdSubmission) -> None:
        problem = self._transaction_id_problem(submission)
        if problem:
            raise ValueError(problem)

    @workflow.signal
    def transaction_id(self, submission: TransactionIdSubmission) -> None:
        """For callers that can only signal (a message bus): the update's validation, and a rejected
        signal is recorded in the state and changes nothing else."""
        problem = self._transaction_id_problem(submission)
        if problem:
            self._state.rejected_transaction_ids.append(f"{submission.transaction_id!r}: {problem}")
            self._event(f"transaction ID signal rejected: {problem}")
            return
        self._accept_transaction_id(submission)

    def _transaction_id_problem(self, submission: TransactionIdSubmission) -> str | None:
        value = submission.transaction_id.strip()
        if not value:
            return "transaction_id is empty: ask the customer for the TrxID bKash sent them"
        if not TRANSACTION_ID.match(value):
            return ("transaction_id must be 6-20 letters or digits, as in the bKash confirmation "
                    f"SMS; got {len(value)} characters")
        if self._state.stage is not MonetixStage.AWAITING_TRANSACTION_ID or self._transaction_id:
            return (f"payment {self._payment_id} is {self._state.stage.value}; a transaction ID is "
                    "accepted only while waiting for the customer's payment")
        return None

    def _accept_transaction_id(self, submission: TransactionIdSubmission) -> None:
        self._transaction_id = submission.transaction_id.strip().upper()
        self._event(f"customer's bKash transaction ID received: {self._transaction_id}")

    # -- the lifecycle ------------------------------------------------------------------------

    async def _sale(self) -> bool:
        self._set_stage(MonetixStage.SALE)
        try:
            ack = await workflow.execute_activity_method(
                MonetixActivities.monetix_sale,
                SaleInput(sale=self._req.sale, callback_url=self._req.callback_url),
                start_to_close_timeout=self._provider_timeout * 2 + timedelta(seconds=5),
                retry_policy=GATE_CALL_RETRY,
                summary=f"sale {format_bdt(self._req.sale.amount)} BDT")
        except ActivityError as err:
            self._record_error(err)
            self._final = MonetixStatus(payment_id=self._payment_id, status="decline", final=True,
                                        code=_code(err), message=_message(err))
            self._detail = f"Monetix refused the sale: {_message(err)}"
            return False
        self._state.request_id = ack.request_id
        self._status_allowed_at = workflow.now() + STATUS_MIN_DELAY
        # The instructions callback often arrives before the sale's answer: then this stage is
        # over at once and not worth showing.
        self._set_stage(MonetixStage.AWAITING_INSTRUCTIONS,
                        f"sale accepted (request {ack.request_id or ack.known_status})",
                        show=not self._state.display_data)
        return True

    async def _payment_instructions(self) -> None:
        """Wait for display_data; answer a clarification Monetix asks for on the way."""
        while self._final is None and not self._state.display_data:
            if self._state.clarification_fields is not None and not self._clarified:
                await self._answer_clarification()
                continue
            await self._wait_or_poll(
                lambda: bool(self._state.display_data) or (
                    self._state.clarification_fields is not None and not self._clarified),
                self._req.instructions_wait, list(AWAITING_CUSTOMER) + [AWAITING_CLARIFICATION],
                "payment instructions")
        if self._final is None:
            self._set_stage(MonetixStage.AWAITING_TRANSACTION_ID, "payment instructions received")

    async def _answer_clarification(self) -> None:
        self._set_stage(MonetixStage.AWAITING_CLARIFICATION,
                        f"Monetix asks for {sorted(self._state.clarification_fields or {})}")
        try:
            await workflow.wait_condition(
                lambda: self._clarification_answer is not None or self._final is not None,
                timeout=self._req.clarification_window, timeout_summary="clarification window")
        except asyncio.TimeoutError:
            self._detail = "the requested clarification data never came"
            await self._final_or_expired()
            return
        if self._final is not None:
            return
        assert self._clarification_answer is not None
        await self._clarify(ClarificationInput(
            payment_id=self._payment_id, fields=self._clarification_answer.fields,
            pending_statuses=[AWAITING_CLARIFICATION]), "requested data")
        self._clarified = True
        self._state.clarification_fields = None
        self._set_stage(MonetixStage.AWAITING_INSTRUCTIONS, "clarification sent")

    async def _transaction_id_and_clarification(self) -> None:
        try:
            await workflow.wait_condition(
                lambda: self._transaction_id is not None or self._final is not None,
                timeout=self._req.transaction_id_window, timeout_summary="transaction ID window")
        except asyncio.TimeoutError:
            self._detail = "the customer did not submit a bKash transaction ID in time"
            await self._final_or_expired()
            return
        if self._final is not None:
            return
        self._set_stage(MonetixStage.CLARIFYING, show=False)
        await self._clarify(ClarificationInput(
            payment_id=self._payment_id, additional_data={"transaction_id": self._transaction_id},
            pending_statuses=list(AWAITING_CUSTOMER)), "transaction ID")
        if self._final is None:
            self._set_stage(MonetixStage.AWAITING_RESULT)

    async def _clarify(self, inp: ClarificationInput, what: str) -> None:
        try:
            how = await workflow.execute_activity_method(
                MonetixActivities.monetix_clarification, inp,
                start_to_close_timeout=self._provider_timeout * 2 + timedelta(seconds=5),
                retry_policy=GATE_CALL_RETRY, summary=f"clarification: {what}")
            self._event(f"clarification ({what}): {how}")
        except ActivityError as err:
            # Refused: the status request tells whether the payment ended meanwhile.
            self._record_error(err)
            await self._wait_or_poll(lambda: False, timedelta(seconds=1), [], "after refused "
                                     "clarification")

    async def _final_result(self) -> None:
        await self._wait_or_poll(lambda: False, self._req.final_callback_wait, [], "final result")

@workflow.defn
class PaymentPagePurchase(_MonetixPurchase):
    interface = "payment_page"

    @workflow.init
    def __init__(self, req: PaymentPagePurchaseRequest) -> None:
        self._req = req
        self._setup(req.params.payment_id, req.params.amount, req.provider_timeout)
        self._url: str | None = None

    @workflow.run
    async def run(self, req: PaymentPagePurchaseRequest) -> MonetixPurchaseResult:
        link = await workflow.execute_activity_method(
            MonetixActivities.monetix_payment_page_link,
            PaymentPageLinkInput(params=req.params, callback_url=req.callback_url),
            start_to_close_timeout=timedelta(seconds=10),
            summary=f"Payment Page link {format_bdt(req.params.amount)} BDT")
        self._url = link.url
        self._set_stage(MonetixStage.AWAITING_CUSTOMER, "Payment Page link ready")
        try:
            await self._wait_or_poll(lambda: False, req.result_window, [], "Payment Page result",
                                     not_found_is_final=True)
        except asyncio.CancelledError:
            await self._stop_on_cancel()
        if self._final is not None and self._final.code == "3061":
            self._final = None
            self._detail = "the customer never paid on the Payment Page"
        return await self._finish(req.params.amount)

    @workflow.update
    async def payment_page(self) -> PaymentInstructions:
        await workflow.wait_condition(lambda: self._url is not None)
        return self._instructions(payment_page_url=self._url)


def _message(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return f"{type(cause).__name__ if cause else 'activity error'}: {cause or err}"


def _code(err: ActivityError) -> str | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        details = cause.details[0]
        if isinstance(details, dict) and details.get("code"):
            return str(details["code"])
    return cause.type if isinstance(cause, ApplicationError) else None
