"""PaymentRefunds: one payment's refund ledger (bKash captured payment or Monetix purchase).

Started by the first refund request (update-with-start, USE_EXISTING), it reads the payment's
outcome from Temporal (what was captured or paid, and when), then takes refunds one at a time, so
two concurrent requests can never together refund more than was captured. A refund id with the same
amount is the same refund (no provider call); with another amount it is refused. A lost refund
answer is resolved by refund status before anything is re-sent (the activities). The ledger ends
when fully refunded or when the refund window closes (bKash: 15 days after capture).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from contracts.common import Provider, PROVIDER_HEARTBEAT
from contracts.money import format_bdt
from contracts.notifications import EventType
from contracts.monetix import CallbackAck, MonetixCallbackEvent, MonetixStage
from contracts.monetix_status import REFUND_OPERATION, SUCCESS
from contracts.refunds import (
    BkashRefundCall,
    LedgerStage,
    MonetixRefundCall,
    MonetixRefundStatusCall,
    ProviderRefundResult,
    RefundablePayment,
    RefundActivity,
    RefundErrorKind,
    RefundRecord,
    RefundRequest,
    RefundsInput,
    RefundsState,
    RefundStage,
)
from workflows import search_attributes as sa
from workflows.bookkeeping import Bookkeeping, error_kind, error_message
from workflows.metrics import count_refund
from workflows.notifications import Notifier

# A lost answer is resolved by refund status inside the activity, so retrying is safe; what the
# merchant or the provider's rules refuse is not retried.
REFUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10), maximum_attempts=0,
    non_retryable_error_types=[RefundErrorKind.ALREADY_REFUNDED, RefundErrorKind.OVER_LIMIT,
                               RefundErrorKind.WINDOW_PASSED, RefundErrorKind.MERCHANT_CONFIG,
                               RefundErrorKind.NOT_REFUNDABLE])
LOAD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(
    minutes=1), maximum_attempts=0)
# Monetix: a retry asks the status request first, which Monetix wants ≥ 10 s after the request.
MONETIX_REFUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10), backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10), maximum_attempts=0,
    non_retryable_error_types=REFUND_RETRY.non_retryable_error_types)
# Monetix: the status request until the refund is final, with backoff (≥ 10 s apart, §3.4).
STATUS_POLL = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=1.5,
                          maximum_interval=timedelta(minutes=5), maximum_attempts=0,
                          non_retryable_error_types=REFUND_RETRY.non_retryable_error_types)
_FINAL = (LedgerStage.FULLY_REFUNDED, LedgerStage.WINDOW_CLOSED, LedgerStage.NOT_REFUNDABLE)


@workflow.defn
class PaymentRefunds:
    @workflow.init
    def __init__(self, inp: RefundsInput) -> None:
        self._inp = inp
        self._state = RefundsState(workflow_id=workflow.info().workflow_id,
                                   provider=inp.provider, payment_key=inp.payment_key,
                                   stage=LedgerStage.LOADING)
        self._books = Bookkeeping(self._state, self._headline,
                                  shown_stage=LedgerStage.LOADING.value)
        self._payment: RefundablePayment | None = None
        self._queue: list[str] = []
        self._skus: dict[str, str] = {}
        self._callbacks: list[MonetixCallbackEvent] = []
        self._notes = Notifier(provider=inp.provider, payment_key=inp.payment_workflow_id,
                               invoice_number=inp.payment_key, account_id=inp.account_id,
                               on_problem=self._books.event)

    @workflow.run
    async def run(self, inp: RefundsInput) -> RefundsState:
        payment = await self._load_payment()
        if payment.refundable:
            await self._take_refunds_until_closed()
        await self._notes.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    # -- merchant code and the endpoint ---------------------------------------------------------

    @workflow.query
    def state(self) -> RefundsState:
        return self._state

    @workflow.update
    async def request_refund(self, req: RefundRequest) -> RefundRecord:
        """Accept a refund (PENDING) or refuse it before any provider call; the same refund id
        with the same amount returns the existing refund, running or finished."""
        await workflow.wait_condition(lambda: self._payment is not None
                                      or self._state.stage in _FINAL)
        existing = self._find(req.refund_id)
        if existing is not None:
            return existing  # the validator refused a different amount
        refusal = self._refusal(req)
        if refusal:
            kind, problem = refusal
            self._books.event(f"refund {req.refund_id} of {format_bdt(req.amount_poisha)} BDT "
                              f"refused: {problem}")
            raise ApplicationError(problem, type=kind, non_retryable=True)
        record = RefundRecord(refund_id=req.refund_id, amount_poisha=req.amount_poisha,
                              reason=req.reason, stage=RefundStage.PENDING,
                              requested_at=workflow.now())
        self._state.refunds.append(record)
        self._skus[req.refund_id] = req.sku or ""
        self._queue.append(req.refund_id)
        self._recount()
        self._books.event(f"refund {req.refund_id} of {format_bdt(req.amount_poisha)} BDT "
                          "accepted")
        return record

    @request_refund.validator
    def _validate_request(self, req: RefundRequest) -> None:
        if (req.provider, req.payment_key) != (self._inp.provider, self._inp.payment_key):
            raise ValueError(f"refund for {req.provider.value} {req.payment_key} sent to the "
                             f"ledger of {self._inp.provider.value} {self._inp.payment_key}")
        existing = self._find(req.refund_id)
        if existing is not None and existing.amount_poisha != req.amount_poisha:
            raise ValueError(f"refund id {req.refund_id} is already a refund of "
                             f"{format_bdt(existing.amount_poisha)} BDT, not "
                             f"{format_bdt(req.amount_poisha)} BDT: use a new refund id")

    @workflow.update
    async def await_refund(self, refund_id: str) -> RefundRecord:
        """The refund once it is final (SUCCEEDED or FAILED)."""
        record = self._find(refund_id)
        if record is None:
            raise ApplicationError(f"no refund {refund_id} for {self._inp.payment_key}",
                                   non_retryable=True)
        await workflow.wait_condition(lambda: record.stage.is_final)
        return record

    @workflow.update
    def provider_callback(self, event: MonetixCallbackEvent) -> CallbackAck:
        """A verified Monetix refund callback, from the merchant endpoint."""
        self._callbacks.append(event)
        self._books.event(f"callback: refund {event.status.status!r}")
        # The purchase itself stays SUCCESS; the refund's outcome is in the ledger.
        return CallbackAck(applied=True, stage=MonetixStage.SUCCESS, detail="refund callback")

    @provider_callback.validator
    def _validate_callback(self, event: MonetixCallbackEvent) -> None:
        if self._inp.provider is not Provider.MONETIX or event.payment_id != self._inp.payment_key:
            raise ValueError(f"refund callback for {event.payment_id} routed to "
                             f"{self._state.workflow_id}")

    # -- the lifecycle ------------------------------------------------------------------------

    async def _load_payment(self) -> RefundablePayment:
        payment = await workflow.execute_activity(
            RefundActivity.LOAD_PAYMENT, self._inp, result_type=RefundablePayment,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=LOAD_RETRY,
            summary=f"outcome of {self._inp.payment_workflow_id}")
        self._payment = payment
        if not payment.refundable:
            self._state.last_error = payment.why_not
            self._set_stage(LedgerStage.NOT_REFUNDABLE, f"not refundable: {payment.why_not}")
            return payment
        self._state.captured_poisha = payment.captured_poisha
        if payment.settled_at is not None:
            self._state.window_ends_at = payment.settled_at + self._inp.window
        self._recount()
        self._set_stage(LedgerStage.REFUNDABLE, f"{format_bdt(payment.captured_poisha)} BDT "
                        "refundable")
        return payment

    async def _take_refunds_until_closed(self) -> None:
        while True:
            if not self._queue:
                if self._state.refundable_poisha == 0:
                    self._set_stage(LedgerStage.FULLY_REFUNDED, "fully refunded")
                    return
                try:
                    await workflow.wait_condition(lambda: bool(self._queue),
                                                  timeout=self._window_left(),
                                                  timeout_summary="refund window")
                except asyncio.TimeoutError:
                    self._set_stage(LedgerStage.WINDOW_CLOSED, "the refund window closed")
                    return
            record = self._find(self._queue[0])
            assert record is not None
            await self._refund(record)
            self._queue.pop(0)
            self._recount()
            self._set_stage(LedgerStage.REFUNDABLE, f"refund {record.refund_id} "
                            f"{record.stage.value}" + (f": {record.detail}" if record.detail
                                                       else ""))

    async def _refund(self, record: RefundRecord) -> None:
        record.stage = RefundStage.REFUNDING
        self._set_stage(LedgerStage.REFUNDING, f"refunding {record.refund_id} "
                        f"({format_bdt(record.amount_poisha)} BDT)")
        try:
            if self._inp.provider is Provider.BKASH:
                result = await self._bkash_refund(record)
            else:
                result = await self._monetix_refund(record)
        except ActivityError as err:
            kind, message = error_kind(err), error_message(err)
            self._books.record_error(err)
            self._finish(record, RefundStage.FAILED, f"{kind}: {message}")
            return
        record.provider_refund_id = result.provider_refund_id or record.provider_refund_id
        record.reconciled = record.reconciled or result.reconciled
        self._finish(record, result.status, result.detail)

    async def _bkash_refund(self, record: RefundRecord) -> ProviderRefundResult:
        payment = self._payment
        assert payment is not None and payment.payment_id and payment.trx_id
        known = [r.provider_refund_id for r in self._state.refunds
                 if r.stage is RefundStage.SUCCEEDED and r.provider_refund_id]
        return await workflow.execute_activity(
            RefundActivity.BKASH_REFUND,
            BkashRefundCall(payment_id=payment.payment_id, trx_id=payment.trx_id,
                            amount_poisha=record.amount_poisha, sku=self._skus.get(
                                record.refund_id, ""), reason=record.reason,
                            refund_id=record.refund_id, known_refund_trx_ids=known,
                            account_id=self._inp.account_id),
            result_type=ProviderRefundResult, retry_policy=REFUND_RETRY,
            start_to_close_timeout=self._inp.provider_timeout * 3 + timedelta(seconds=5),
            heartbeat_timeout=PROVIDER_HEARTBEAT,
            summary=f"refund {format_bdt(record.amount_poisha)} BDT ({record.refund_id})")

    async def _monetix_refund(self, record: RefundRecord) -> ProviderRefundResult:
        callback_url = (f"{self._inp.callback_base_url}/monetix/callback"
                        if self._inp.callback_base_url else None)
        known = [r.provider_refund_id for r in self._state.refunds
                 if r.stage is RefundStage.SUCCEEDED and r.provider_refund_id]
        sent = await workflow.execute_activity(
            RefundActivity.MONETIX_REFUND,
            MonetixRefundCall(payment_id=self._inp.payment_key, amount_poisha=record.amount_poisha,
                              description=record.reason, refund_id=record.refund_id,
                              callback_url=callback_url, known_operation_ids=known,
                              account_id=self._inp.account_id),
            result_type=ProviderRefundResult, retry_policy=MONETIX_REFUND_RETRY,
            start_to_close_timeout=self._inp.provider_timeout * 2 + timedelta(seconds=5),
            heartbeat_timeout=PROVIDER_HEARTBEAT,
            summary=f"refund {format_bdt(record.amount_poisha)} BDT ({record.refund_id})")
        record.request_id = sent.request_id
        if sent.status.is_final:
            return sent
        # The result comes by callback; a lost one is fetched with the status request.
        try:
            await workflow.wait_condition(lambda: self._callback_for(record) is not None,
                                          timeout=self._inp.callback_wait,
                                          timeout_summary="refund callback")
            event = self._callback_for(record)
            assert event is not None
            op = event.status.operations[-1] if event.status.operations else None
            ok = (op.status if op else event.status.status) == SUCCESS
            return ProviderRefundResult(status=RefundStage.SUCCEEDED if ok else RefundStage.FAILED,
                                        provider_refund_id=op.id if op else None,
                                        detail="" if ok else f"declined: {event.status.code} "
                                        f"{event.status.message or ''}".strip())
        except asyncio.TimeoutError:
            self._books.event(f"no refund callback within {self._inp.callback_wait}: asking "
                              "the status request")
        return await workflow.execute_activity(
            RefundActivity.MONETIX_REFUND_STATUS,
            MonetixRefundStatusCall(payment_id=self._inp.payment_key, refund_id=record.refund_id,
                                    amount_poisha=record.amount_poisha,
                                    request_id=record.request_id, known_operation_ids=known,
                                    account_id=self._inp.account_id),
            result_type=ProviderRefundResult, retry_policy=STATUS_POLL,
            start_to_close_timeout=self._inp.provider_timeout + timedelta(seconds=5),
            heartbeat_timeout=PROVIDER_HEARTBEAT,
            summary=f"status of refund {record.refund_id}")

    # -- bookkeeping ------------------------------------------------------------------------

    def _callback_for(self, record: RefundRecord) -> MonetixCallbackEvent | None:
        """The final callback of this refund: matched by the refund request's id (a late replay of
        an earlier refund's callback carries that refund's request id)."""
        known = {r.provider_refund_id for r in self._state.refunds if r is not record}
        for event in self._callbacks:
            ops = [op for op in event.status.operations if op.type == REFUND_OPERATION]
            op = ops[-1] if ops else None
            if op is None or op.status not in ("success", "decline", "error") or op.id in known:
                continue
            if op.request_id == record.request_id or (
                    op.request_id is None and record.request_id is None):
                return event
        return None

    def _find(self, refund_id: str) -> RefundRecord | None:
        return next((r for r in self._state.refunds if r.refund_id == refund_id), None)

    def _refusal(self, req: RefundRequest) -> tuple[RefundErrorKind, str] | None:
        """Why a refund is refused before any provider call (kind, what to tell the merchant)."""
        state, payment = self._state, self._payment
        if state.stage is LedgerStage.NOT_REFUNDABLE or payment is None:
            return RefundErrorKind.NOT_REFUNDABLE, state.last_error or "not refundable"
        if state.stage in _FINAL:
            return (RefundErrorKind.NOT_REFUNDABLE,
                    f"the refund ledger of {req.payment_key} is {state.stage.value}")
        if state.window_ends_at is not None and workflow.now() >= state.window_ends_at:
            return (RefundErrorKind.WINDOW_PASSED,
                    f"the refund window closed at {state.window_ends_at:%Y-%m-%d %H:%M} UTC "
                    f"({self._inp.window.days} days after the payment)")
        if len(state.refunds) >= self._inp.max_refunds:
            return (RefundErrorKind.OVER_LIMIT,
                    f"{self._inp.max_refunds} refunds already made for this payment (the limit)")
        if req.amount_poisha > state.refundable_poisha:
            return RefundErrorKind.OVER_LIMIT, (
                f"{format_bdt(req.amount_poisha)} BDT is more than the "
                f"{format_bdt(state.refundable_poisha)} BDT still refundable (captured "
                f"{format_bdt(state.captured_poisha)}, refunded or pending "
                f"{format_bdt(state.refunded_poisha + state.pending_poisha)})")
        return None

    def _finish(self, record: RefundRecord, stage: RefundStage, detail: str) -> None:
        record.stage = stage
        record.detail = detail
        record.finished_at = workflow.now()
        self._recount()
        count_refund(self._inp.provider.value, stage.value)  # a metric, not a command
        payment = self._payment
        self._notes.emit(
            EventType.REFUND_SUCCEEDED if stage is RefundStage.SUCCEEDED
            else EventType.REFUND_FAILED, stage=stage.value, refund_id=record.refund_id,
            amount_poisha=record.amount_poisha, refunded_poisha=self._state.refunded_poisha,
            provider_payment_id=payment.payment_id if payment else None,
            trx_id=payment.trx_id if payment else None, detail=detail)

    def _recount(self) -> None:
        state = self._state
        state.refunded_poisha = sum(r.amount_poisha for r in state.refunds
                                    if r.stage is RefundStage.SUCCEEDED)
        state.pending_poisha = sum(r.amount_poisha for r in state.refunds
                                   if not r.stage.is_final)
        state.refundable_poisha = max(
            0, state.captured_poisha - state.refunded_poisha - state.pending_poisha)

    def _window_left(self) -> timedelta:
        ends = self._state.window_ends_at
        if ends is None:
            return self._inp.window
        return max(ends - workflow.now(), timedelta(milliseconds=1))

    def _set_stage(self, stage: LedgerStage, event: str) -> None:
        self._books.set_stage(stage, event, also=[
            sa.REFUNDED_POISHA.value_set(self._state.refunded_poisha)])

    def _headline(self) -> str:
        s = self._state
        name = "bKash invoice" if s.provider is Provider.BKASH else "Monetix payment"
        return (f"**{s.stage.value}** · refunds of {name} {s.payment_key} · refunded "
                f"{format_bdt(s.refunded_poisha)} of {format_bdt(s.captured_poisha)} BDT · "
                f"refundable {format_bdt(s.refundable_poisha)} BDT")
