"""MonetixGatePurchase: a Monetix bKash purchase by Gate (seed 003): sale → payment instructions
(display_data) by callback → the customer pays in bKash and types the transaction ID on the
merchant's site → clarification request with the transaction ID → final success/decline callback.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from contracts.common import UNKNOWN_ACCOUNT, PROVIDER_HEARTBEAT
from contracts.money import format_bdt
from contracts.monetix import (
    TRANSACTION_ID,
    ClarificationAnswer,
    ClarificationInput,
    MonetixActivity,
    MonetixPurchaseRequest,
    MonetixPurchaseResult,
    MonetixStage,
    PaymentInstructions,
    SaleAck,
    SaleInput,
    TransactionIdSubmission,
)
from contracts.monetix_requests import clarification_problems
from contracts.monetix_status import AWAITING_CLARIFICATION, AWAITING_CUSTOMER, MonetixStatus
from workflows.bookkeeping import error_code, error_kind
from workflows.monetix_purchase import (
    GATE_CALL_RETRY,
    STATUS_MIN_DELAY,
    MonetixPurchaseBase,
    Next,
)

# Versioned change: a clarification window that ends without a final status ends the purchase
# (before it, the workflow opened another window, forever).
CLARIFICATION_WINDOW_ENDS = "clarification-window-ends"


@workflow.defn
class MonetixGatePurchase(MonetixPurchaseBase):
    interface = "gate"

    @workflow.init
    def __init__(self, req: MonetixPurchaseRequest) -> None:
        self._req = req
        self._setup(req.sale.payment_id, req.sale.amount_poisha, req.provider_timeout)
        self._clarification_answer: ClarificationAnswer | None = None
        self._clarified = False

    @workflow.run
    async def run(self, req: MonetixPurchaseRequest) -> MonetixPurchaseResult:
        try:
            if (await self._sale() is Next.GO_ON
                    and await self._payment_instructions() is Next.GO_ON
                    and await self._transaction_id_and_clarification() is Next.GO_ON):
                await self._final_result()
        except asyncio.CancelledError:
            await self._stop_on_cancel()
        return await self._finish(req.sale.amount_poisha)

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
        self._books.event(f"merchant answered the clarification: {sorted(answer.fields)}")
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
            self._books.event(f"transaction ID signal rejected: {problem}")
            return
        self._accept_transaction_id(submission)

    def _transaction_id_problem(self, submission: TransactionIdSubmission) -> str | None:
        value = submission.transaction_id.strip()
        if not value:
            return "transaction_id is empty: ask the customer for the TrxID bKash sent them"
        if not TRANSACTION_ID.match(value):
            return ("transaction_id must be 6-20 letters or digits, as in the bKash confirmation "
                    f"SMS; got {len(value)} characters")
        if (self._state.stage is not MonetixStage.AWAITING_TRANSACTION_ID
                or self._state.transaction_id):
            return (f"payment {self._payment_id} is {self._state.stage.value}; a transaction ID is "
                    "accepted only while waiting for the customer's payment")
        return None

    def _accept_transaction_id(self, submission: TransactionIdSubmission) -> None:
        self._state.transaction_id = submission.transaction_id.strip().upper()
        self._detail = (f"transaction ID {self._state.transaction_id} received; Monetix checks it "
                        "with bKash (clarification), the result follows by callback")
        # The lifecycle sends the clarification next; the stage lasts that one call.
        self._set_stage(MonetixStage.CLARIFYING, "customer's bKash transaction ID received: "
                        f"{self._state.transaction_id}", show=False)

    # -- the lifecycle ------------------------------------------------------------------------

    async def _sale(self) -> Next:
        self._set_stage(MonetixStage.SALE)
        try:
            ack = await workflow.execute_activity(
                MonetixActivity.SALE,
                SaleInput(sale=self._req.sale, callback_url=self._req.callback_url,
                          account_id=self._account),
                result_type=SaleAck,
                start_to_close_timeout=self._provider_timeout * 2 + timedelta(seconds=5),
                heartbeat_timeout=PROVIDER_HEARTBEAT,
                retry_policy=GATE_CALL_RETRY,
                summary=f"sale {format_bdt(self._req.sale.amount_poisha)} BDT")
        except ActivityError as err:
            message = self._books.record_error(err)
            if error_kind(err) == UNKNOWN_ACCOUNT:  # nothing was sent to Monetix
                self._failed, self._detail = True, message
                return Next.END
            self._final = MonetixStatus(payment_id=self._payment_id, status="decline", final=True,
                                        code=error_code(err), message=message)
            self._detail = f"Monetix refused the sale: {message}"
            return Next.END
        self._state.request_id = ack.request_id
        self._status_allowed_at = workflow.now() + STATUS_MIN_DELAY
        # The instructions callback often arrives before the sale's answer: then this stage is
        # over at once and not worth showing.
        self._set_stage(MonetixStage.AWAITING_INSTRUCTIONS,
                        f"sale accepted (request {ack.request_id or ack.known_status})",
                        show=not self._state.display_data)
        return Next.GO_ON

    async def _payment_instructions(self) -> Next:
        """Wait for display_data; answer a clarification Monetix asks for on the way."""
        while self._final is None and not self._state.display_data:
            if self._state.clarification_fields is not None and not self._clarified:
                if await self._answer_clarification() is Next.END:
                    return Next.END
                continue
            await self._wait_or_poll(
                lambda: bool(self._state.display_data) or (
                    self._state.clarification_fields is not None and not self._clarified),
                self._req.instructions_wait, list(AWAITING_CUSTOMER) + [AWAITING_CLARIFICATION],
                "payment instructions")
        if self._final is not None:
            return Next.END
        self._set_stage(MonetixStage.AWAITING_TRANSACTION_ID, "payment instructions received")
        return Next.GO_ON

    async def _answer_clarification(self) -> Next:
        self._set_stage(MonetixStage.AWAITING_CLARIFICATION,
                        f"Monetix asks for {sorted(self._state.clarification_fields or {})}")
        try:
            await workflow.wait_condition(
                lambda: self._clarification_answer is not None or self._final is not None,
                timeout=self._req.clarification_window, timeout_summary="clarification window")
        except asyncio.TimeoutError:
            self._detail = "the requested clarification data never came"
            await self._final_or_expired()
            # The window is over either way: a final status ends the purchase, and without one it
            # ends EXPIRED (the status request said nothing final), never another window.
            if workflow.patched(CLARIFICATION_WINDOW_ENDS):
                return Next.END
            return Next.GO_ON
        if self._final is not None:
            return Next.END
        assert self._clarification_answer is not None
        await self._clarify(ClarificationInput(
            payment_id=self._payment_id, fields=self._clarification_answer.fields,
            pending_statuses=[AWAITING_CLARIFICATION], account_id=self._account), "requested data")
        self._clarified = True
        self._state.clarification_fields = None
        self._set_stage(MonetixStage.AWAITING_INSTRUCTIONS, "clarification sent")
        return Next.GO_ON

    async def _transaction_id_and_clarification(self) -> Next:
        try:
            await workflow.wait_condition(
                lambda: self._state.transaction_id is not None or self._final is not None,
                timeout=self._req.transaction_id_window, timeout_summary="transaction ID window")
        except asyncio.TimeoutError:
            self._detail = "the customer did not submit a bKash transaction ID in time"
            await self._final_or_expired()
            return Next.END
        if self._final is not None:
            return Next.END
        await self._clarify(ClarificationInput(
            payment_id=self._payment_id,
            additional_data={"transaction_id": self._state.transaction_id},
            pending_statuses=list(AWAITING_CUSTOMER), account_id=self._account), "transaction ID")
        if self._final is not None:
            return Next.END
        self._set_stage(MonetixStage.AWAITING_RESULT)
        return Next.GO_ON

    async def _clarify(self, inp: ClarificationInput, what: str) -> None:
        try:
            how = await workflow.execute_activity(
                MonetixActivity.CLARIFICATION, inp, result_type=str,
                start_to_close_timeout=self._provider_timeout * 2 + timedelta(seconds=5),
                heartbeat_timeout=PROVIDER_HEARTBEAT,
                retry_policy=GATE_CALL_RETRY, summary=f"clarification: {what}")
            self._books.event(f"clarification ({what}): {how}")
        except ActivityError as err:
            # Refused: the status request tells whether the payment ended meanwhile.
            self._books.record_error(err)
            await self._wait_or_poll(lambda: False, timedelta(seconds=1), [], "after refused "
                                     "clarification")

    async def _final_result(self) -> None:
        await self._wait_or_poll(lambda: False, self._req.final_callback_wait, [], "final result")
