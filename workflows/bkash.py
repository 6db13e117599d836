"""BkashAuthCapture: one bKash Auth & Capture payment, from create to capture or void.

The seed (../shared/seeds/000_b28e6c99de9c6c37.txt) in order: create payment → the customer approves
on bKash's page → execute → AUTHORIZED → the merchant delivers the service → capture, or void when it
cannot be delivered. A lost execute answer is resolved with Query Payment (Initiated → create again;
Authorized → go on); capture and void are retried until bKash gives a final answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from enum import Enum

from temporalio import workflow
from temporalio.exceptions import ActivityError

from contracts.bkash import (
    TRANSIENT_STAGES,
    ApprovalUrl,
    BkashActivity,
    BkashErrorKind,
    BkashPaymentRequest,
    BkashPaymentResult,
    BkashPaymentState,
    BkashStage,
    BrowserReturn,
    BrowserReturnStatus,
    CreatedPaymentInfo,
    CreatePaymentInput,
    PaymentRef,
    ProviderPaymentStatus,
    ReturnOutcome,
    ServiceDecision,
    ServiceDecisionAck,
    ServiceOutcome,
    TransactionStatus,
)
from contracts.common import UNKNOWN_ACCOUNT, Provider, PROVIDER_HEARTBEAT
from contracts.money import format_bdt
from workflows.bkash_returns import CustomerReturns
from workflows.bkash_rules import (
    CREATE_RETRY,
    EVENT_FOR_STAGE,
    EXECUTE_ONCE,
    EXECUTE_WAITS_FOR_TOKEN,
    STAGE_FOR_STATUS,
    UNTIL_FINAL,
    payer_reference,
    retry_delay,
)
from workflows.bookkeeping import Bookkeeping, error_kind
from workflows.notifications import Notifier

class _Again(Enum):
    """A step's outcome that is not a stage: what the lifecycle does next."""

    WAIT = "bKash has not seen the approval: keep waiting for the customer"
    CREATE = "the execute was lost before bKash applied it: create a new payment"


@workflow.defn
class BkashAuthCapture:
    @workflow.init
    def __init__(self, req: BkashPaymentRequest) -> None:
        self._req = req
        self._state = BkashPaymentState(workflow_id=workflow.info().workflow_id,
                                        invoice_number=req.invoice_number,
                                        amount_poisha=req.amount_poisha,
                                        stage=BkashStage.CREATING)
        self._books = Bookkeeping(self._state, self._headline,
                                  shown_stage=BkashStage.CREATING.value,
                                  resting=lambda stage: stage not in TRANSIENT_STAGES)
        self._returns = CustomerReturns()
        self._notes = Notifier(provider=Provider.BKASH, invoice_number=req.invoice_number,
                               account_id=req.account_id, on_problem=self._books.event)
        self._told: tuple[BkashStage, str | None] | None = None
        self._decision: ServiceDecision | None = None
        self._hold_until: datetime | None = None
        self._detail = ""

    @workflow.run
    async def run(self, req: BkashPaymentRequest) -> BkashPaymentResult:
        try:
            stage = await self._authorize()  # create → customer approves → execute (→ query)
            if stage is BkashStage.AUTHORIZED:
                if await self._service_decision() is ServiceDecision.DELIVERED:
                    stage = await self._capture()
                else:
                    stage = await self._void()
        except asyncio.CancelledError:
            stage = await self._settle_after_cancel()
        self._finish(stage)
        await self._notes.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BkashPaymentResult(invoice_number=req.invoice_number, stage=stage,
                                  amount_poisha=req.amount_poisha,
                                  payment_id=self._state.payment_id, trx_id=self._state.trx_id,
                                  detail=self._detail)

    # -- merchant code and the customer's browser ---------------------------------------------

    @workflow.query
    def state(self) -> BkashPaymentState:
        return self._state

    @workflow.update
    async def approval_url(self) -> ApprovalUrl:
        """Update-with-start hands merchant code the bkashURL in the same call as the start."""
        await workflow.wait_condition(lambda: self._state.stage is not BkashStage.CREATING)
        return ApprovalUrl(workflow_id=self._state.workflow_id, stage=self._state.stage,
                           payment_id=self._state.payment_id, bkash_url=self._state.bkash_url,
                           detail=self._detail, amount_poisha=self._req.amount_poisha)

    @workflow.update
    async def customer_returned(self, ret: BrowserReturn) -> ReturnOutcome:
        """Answered when bKash has answered the execute (or query) the return asked for."""
        if self._returns.is_unconfirmed(ret):
            self._returns.record_unconfirmed()
            self._books.event(f"customer return said {ret.status.value} with a signature that is "
                              "not the create answer's: recorded, nothing ended")
            return self._outcome(self._state.stage, "bKash has not confirmed an outcome yet")
        self._books.event(f"customer returned from bKash's page: status={ret.status.value}")
        return await self._returns.join(ret)

    @customer_returned.validator
    def _validate_return(self, ret: BrowserReturn) -> None:
        problem = self._returns.refusal(ret, stage=self._state.stage,
                                        payment_id=self._state.payment_id)
        if problem:
            raise ValueError(f"payment {self._state.workflow_id} {problem}")

    # The outcome is optional so that an update sent without a payload (the stock `temporal`
    # CLI without --input) is a plain decision, not a TypeError.
    @workflow.update
    def service_delivered(self, outcome: ServiceOutcome | None = None) -> ServiceDecisionAck:
        return self._decide(ServiceDecision.DELIVERED, outcome)

    @workflow.update
    def service_failed(self, outcome: ServiceOutcome | None = None) -> ServiceDecisionAck:
        return self._decide(ServiceDecision.FAILED, outcome)

    @service_delivered.validator
    def _validate_delivered(self, outcome: ServiceOutcome | None = None) -> None:
        self._check_can_decide("service_delivered")

    @service_failed.validator
    def _validate_failed(self, outcome: ServiceOutcome | None = None) -> None:
        self._check_can_decide("service_failed")

    def _check_can_decide(self, name: str) -> None:
        if self._state.stage is not BkashStage.AUTHORIZED or self._decision is not None:
            raise ValueError(f"{name} rejected: payment {self._state.workflow_id} is "
                             f"{self._state.stage.value}; a service outcome is accepted only "
                             "while the payment is AUTHORIZED and undecided")

    def _decide(self, decision: ServiceDecision,
                outcome: ServiceOutcome | None) -> ServiceDecisionAck:
        note = outcome.note if outcome else ""
        self._decision = decision
        self._state.service_decision = decision.value
        self._books.event(f"merchant reported service {decision.value}"
                          + (f": {note}" if note else ""))
        return ServiceDecisionAck(stage=self._state.stage, decision=decision.value)

    # -- the lifecycle ----------------------------------------------------------------------

    async def _authorize(self) -> BkashStage:
        """Create, wait for the customer, execute; a lost execute may need a new payment."""
        while self._state.create_attempts < self._req.max_create_attempts:
            if not await self._create_payment():
                return BkashStage.FAILED
            outcome = await self._approve_and_execute()
            if outcome is not _Again.CREATE:
                return outcome
        self._detail = (f"bKash still reported Initiated after {self._state.create_attempts} "
                        "payments whose execute answer was lost; no money moved")
        return BkashStage.EXPIRED

    async def _create_payment(self) -> bool:
        self._set_stage(BkashStage.CREATING)
        self._state.create_attempts += 1
        if self._state.payment_id:
            self._state.previous_payment_ids.append(self._state.payment_id)
        try:
            created = await workflow.execute_activity(
                BkashActivity.CREATE_PAYMENT,
                CreatePaymentInput(invoice_number=self._req.invoice_number,
                                   amount_poisha=self._req.amount_poisha,
                                   payer_reference=self._req.payer_reference
                                   or payer_reference(self._req.invoice_number),
                                   callback_url=self._req.callback_url,
                                   account_id=self._req.account_id),
                result_type=CreatedPaymentInfo,
                start_to_close_timeout=self._call_timeout(calls=2), retry_policy=CREATE_RETRY,
                heartbeat_timeout=PROVIDER_HEARTBEAT,
                summary=f"create payment {format_bdt(self._req.amount_poisha)} BDT "
                        f"(attempt {self._state.create_attempts})")
        except ActivityError as err:
            message = self._books.record_error(err)
            self._detail = message if error_kind(err) == UNKNOWN_ACCOUNT else \
                f"bKash refused to create the payment: {message}"
            return False
        self._state.payment_id = created.payment_id
        self._state.bkash_url = created.bkash_url
        self._returns.redirect_signature = created.redirect_signature
        self._set_stage(BkashStage.AWAITING_APPROVAL, f"created payment {created.payment_id}")
        self._answer_return(BkashStage.AWAITING_APPROVAL,
                            "bKash needs the customer to approve again", new_url=True)
        return True

    async def _approve_and_execute(self) -> BkashStage | _Again:
        """Wait for the customer's return within the approval window, then execute: AUTHORIZED,
        a final stage, or CREATE when bKash says a new payment is needed."""
        deadline = workflow.now() + self._req.approval_window
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._returns.pending is not None,
                    timeout=max(deadline - workflow.now(), timedelta(milliseconds=1)),
                    timeout_summary="customer approval window")
            except asyncio.TimeoutError:
                # No return: the customer gave up, or approved and closed the tab (§5; laravel-bkash
                # #6). Only execute tells which, and only an approved payment can be executed.
                self._books.event("approval window over without a return from bKash's page")
                return await self._execute(window_over=True)
            ret = self._returns.pending
            assert ret is not None
            if ret.status is BrowserReturnStatus.SUCCESS:
                await self._returns.space_execute()
                outcome = await self._execute(window_over=False)
            else:
                outcome = await self._confirm_unsuccessful_return(ret.status)
            if outcome is _Again.CREATE:
                return outcome  # the new payment's create answers the customer's return
            if outcome is not _Again.WAIT:
                self._answer_return(outcome, self._detail)
                return outcome
            self._answer_return(self._state.stage, self._detail, still_waiting=True)

    async def _execute(self, *, window_over: bool) -> BkashStage | _Again:
        self._set_stage(BkashStage.EXECUTING)
        token_deadline: datetime | None = None
        while True:
            try:
                status = await workflow.execute_activity(
                    BkashActivity.EXECUTE_PAYMENT, self._ref(), result_type=ProviderPaymentStatus,
                    start_to_close_timeout=self._call_timeout(calls=2), retry_policy=EXECUTE_ONCE,
                    heartbeat_timeout=PROVIDER_HEARTBEAT,
                    summary=f"execute payment {self._state.payment_id}")
                break
            except ActivityError as err:
                if error_kind(err) != BkashErrorKind.TOKEN_RATE_LIMITED \
                        or not workflow.patched(EXECUTE_WAITS_FOR_TOKEN):
                    return await self._execute_failed(err, window_over=window_over)
                # We never sent it (no token): not a lost answer, so no query and no new payment
                # (the customer would have to approve again). Wait for a token, then send it.
                message = self._books.record_error(err)
                token_wait = max(self._req.token_wait, self._req.approval_window)
                token_deadline = token_deadline or workflow.now() + token_wait
                if workflow.now() >= token_deadline:
                    self._detail = (f"execute was never sent: no bKash token within "
                                    f"{token_wait} ({message}); no money moved")
                    return BkashStage.EXPIRED
                delay = min(retry_delay(err), token_deadline - workflow.now())
                self._detail = (f"confirming with bKash: execute not sent yet (no bKash token); "
                                f"sending it in {delay.total_seconds():.0f} s")
                self._books.event(self._detail)
                # The customer's return is answered now (a page that shows the payment pending),
                # not after a wait that may last an hour.
                self._answer_return(BkashStage.EXECUTING, self._detail)
                await workflow.sleep(delay, summary="waiting for a bKash token to execute")
        return self._accept_status(status, "execute")

    async def _execute_failed(self, err: ActivityError, *,
                              window_over: bool) -> BkashStage | _Again:
        """What an execute that failed (other than for want of a token) leaves."""
        message = self._books.record_error(err)
        kind = error_kind(err)
        if kind == BkashErrorKind.CUSTOMER_DECLINED:
            self._detail = f"the customer's bKash wallet declined: {message}"
            return BkashStage.DECLINED
        if kind == BkashErrorKind.MERCHANT_CONFIG:
            self._detail = message
            return BkashStage.FAILED
        if kind == BkashErrorKind.INVALID_STATE:
            # bKash has not seen the customer's approval: a forged or early "success".
            if window_over:
                self._detail = "the customer did not approve within the approval window"
                return BkashStage.EXPIRED
            self._detail = "bKash has not confirmed the customer's approval; still waiting"
            self._set_stage(BkashStage.AWAITING_APPROVAL, self._detail)
            return _Again.WAIT
        # No reliable answer: the one case in which bKash allows Query Payment.
        return await self._stage_after_lost_execute()

    async def _stage_after_lost_execute(self) -> BkashStage | _Again:
        status = await self._query("execute answer lost")
        if status.transaction_status == TransactionStatus.INITIATED:
            self._books.event(f"bKash reports {status.payment_id} Initiated: creating a new payment")
            return _Again.CREATE
        return self._accept_status(status, "query")

    async def _confirm_unsuccessful_return(self, status: BrowserReturnStatus) -> BkashStage:
        """failure/cancel in the redirect is unsigned: confirm with bKash before ending."""
        reported = await self._query(f"customer return said {status.value}")
        if reported.transaction_status == TransactionStatus.INITIATED:
            # bKash keeps an abandoned payment Initiated (§10.2); no money has moved, and it never
            # will for this paymentID because we do not execute it.
            if status is BrowserReturnStatus.CANCEL:
                self._detail = "the customer cancelled on bKash's page"
                return BkashStage.CANCELLED
            self._detail = "the customer could not complete bKash's page (wallet, OTP or PIN)"
            return BkashStage.DECLINED
        return self._accept_status(reported, "query")

    def _accept_status(self, status: ProviderPaymentStatus, source: str) -> BkashStage:
        stage = STAGE_FOR_STATUS.get(status.transaction_status)
        if status.trx_id:
            self._state.trx_id = status.trx_id
        self._check_amount(status, source)
        if stage is None:
            self._detail = (f"bKash {source} reported an unexpected status "
                            f"{status.transaction_status!r} for {status.payment_id}")
            return BkashStage.FAILED
        if stage is BkashStage.AUTHORIZED:
            self._state.bkash_url = None
            self._detail = f"authorized {format_bdt(self._req.amount_poisha)} BDT, trxID " \
                           f"{status.trx_id}"
        elif stage is BkashStage.CAPTURED:
            self._detail = f"bKash reports {status.payment_id} already Completed"
        else:
            self._detail = f"bKash reports {status.payment_id} {status.transaction_status}"
        return stage

    def _check_amount(self, status: ProviderPaymentStatus, source: str) -> None:
        """bKash echoes the amount in execute, query and capture: a different one is recorded for
        the merchant's books (it never happens unless something between us and bKash is wrong)."""
        if status.amount_poisha is not None and status.amount_poisha != self._req.amount_poisha:
            self._books.record_problem(
                f"bKash {source} reported {format_bdt(status.amount_poisha)} BDT for "
                f"{status.payment_id}, but the invoice is {format_bdt(self._req.amount_poisha)} "
                "BDT: check the payment in the bKash merchant portal")

    async def _service_decision(self) -> ServiceDecision | None:
        """The merchant's decision, or None when the hold deadline passes without one."""
        self._hold_until = workflow.now() + self._req.hold_deadline
        self._set_stage(BkashStage.AUTHORIZED, self._detail)
        try:
            await workflow.wait_condition(lambda: self._decision is not None,
                                          timeout=self._req.hold_deadline,
                                          timeout_summary="service decision hold deadline")
        except asyncio.TimeoutError:
            self._books.event("no service decision before the hold deadline: voiding")
            self._detail = "no service decision before the hold deadline"
            return None
        finally:
            self._hold_until = None
        return self._decision

    async def _capture(self) -> BkashStage:
        self._set_stage(BkashStage.CAPTURING)
        status = await self._settle(BkashActivity.CAPTURE_PAYMENT, "capture")
        if status.transaction_status == TransactionStatus.COMPLETED:
            self._detail = f"captured {format_bdt(self._req.amount_poisha)} BDT, trxID " \
                           f"{self._state.trx_id}"
            return BkashStage.CAPTURED
        if status.transaction_status == TransactionStatus.CANCELLED:
            self._detail = "capture requested, but bKash reports the authorization cancelled"
            return BkashStage.VOIDED
        self._detail = f"capture ended with unexpected status {status.transaction_status!r}"
        return BkashStage.FAILED

    async def _void(self) -> BkashStage:
        self._set_stage(BkashStage.VOIDING)
        status = await self._settle(BkashActivity.VOID_PAYMENT, "void")
        if status.transaction_status == TransactionStatus.CANCELLED:
            reason = ("service not delivered" if self._decision is ServiceDecision.FAILED
                      else self._detail)
            self._detail = f"voided: {reason}"
            return BkashStage.VOIDED
        if status.transaction_status == TransactionStatus.COMPLETED:
            self._detail = "void requested, but bKash reports the payment already captured"
            return BkashStage.CAPTURED
        self._detail = f"void ended with unexpected status {status.transaction_status!r}"
        return BkashStage.FAILED

    async def _settle_after_cancel(self) -> BkashStage:
        """An operator cancelled the workflow: leave no money held and no payment unaccounted for.

        Activities started after the cancellation run normally, so a held authorization is voided
        (void on an already captured payment is reconciled to CAPTURED by query).
        """
        stage = self._state.stage
        self._books.event(f"workflow cancelled by an operator during {stage.value}")
        if stage is BkashStage.EXECUTING:
            # The execute may have reached bKash: ask before walking away.
            stage = STAGE_FOR_STATUS.get(
                (await self._query("cancelled during execute")).transaction_status,
                BkashStage.CANCELLED)
        if stage in (BkashStage.AUTHORIZED, BkashStage.CAPTURING, BkashStage.VOIDING):
            self._detail = "cancelled by an operator"
            return await self._void()
        if stage.is_final:
            return stage
        self._detail = "cancelled by an operator before any money moved"
        return BkashStage.CANCELLED

    async def _settle(self, activity: BkashActivity, operation: str) -> ProviderPaymentStatus:
        status = await workflow.execute_activity(
            activity, self._ref(), result_type=ProviderPaymentStatus,
            start_to_close_timeout=self._call_timeout(calls=3), retry_policy=UNTIL_FINAL,
            heartbeat_timeout=PROVIDER_HEARTBEAT,
            summary=f"{operation} {format_bdt(self._req.amount_poisha)} BDT of "
                    f"{self._state.payment_id}")
        if status.trx_id:
            self._state.trx_id = status.trx_id
        if status.reconciled_by_query:
            self._books.event(f"{operation} reconciled by query: bKash reports "
                              f"{status.transaction_status}")
        if operation == "capture":
            self._check_amount(status, operation)
        return status

    async def _query(self, why: str) -> ProviderPaymentStatus:
        return await workflow.execute_activity(
            BkashActivity.QUERY_PAYMENT, self._ref(), result_type=ProviderPaymentStatus,
            start_to_close_timeout=self._call_timeout(calls=2), retry_policy=UNTIL_FINAL,
            heartbeat_timeout=PROVIDER_HEARTBEAT,
            summary=f"query payment {self._state.payment_id} ({why})")

    # -- bookkeeping ------------------------------------------------------------------------

    def _ref(self) -> PaymentRef:
        assert self._state.payment_id is not None
        return PaymentRef(payment_id=self._state.payment_id,
                          invoice_number=self._req.invoice_number, account_id=self._req.account_id)

    def _call_timeout(self, *, calls: int) -> timedelta:
        # One attempt may need a token call and a query besides the call itself, each bounded by
        # the provider timeout (30 s by default: the seed).
        return self._req.provider_timeout * calls + timedelta(seconds=5)

    def _outcome(self, stage: BkashStage, detail: str, *, new_url: bool = False) -> ReturnOutcome:
        return ReturnOutcome(stage=stage, payment_id=self._state.payment_id, detail=detail,
                             bkash_url=self._state.bkash_url if new_url else None,
                             amount_poisha=self._req.amount_poisha)

    def _answer_return(self, stage: BkashStage, detail: str, *, new_url: bool = False,
                       still_waiting: bool = False) -> None:
        self._returns.answer(self._outcome(stage, detail, new_url=new_url),
                             still_waiting=still_waiting)

    def _finish(self, stage: BkashStage) -> None:
        self._answer_return(stage, self._detail)
        self._state.bkash_url = None
        self._set_stage(stage, self._detail)

    def _set_stage(self, stage: BkashStage, event: str | None = None) -> None:
        self._books.set_stage(stage, event, provider_payment_id=self._state.payment_id)
        told = (stage, self._state.bkash_url)
        if stage in EVENT_FOR_STAGE and told != self._told:
            self._told = told
            state = self._state
            self._notes.emit(EVENT_FOR_STAGE[stage], stage=stage.value, last=stage.is_final,
                             amount_poisha=self._req.amount_poisha,
                             provider_payment_id=state.payment_id, trx_id=state.trx_id,
                             bkash_url=state.bkash_url,
                             detail=self._detail if stage.is_final else None)

    def _headline(self) -> str:
        state = self._state
        lines = [f"**{state.stage.value}** · {format_bdt(self._req.amount_poisha)} BDT · "
                 f"invoice {self._req.invoice_number}",
                 f"paymentID: {state.payment_id or '-'} · trxID: {state.trx_id or '-'}"]
        if state.stage is BkashStage.AUTHORIZED and self._hold_until is not None:
            lines.append(f"held until {self._hold_until:%Y-%m-%d %H:%M:%S} UTC: voided then "
                         "unless the service is reported delivered")
        return "\n\n".join(lines)
