"""What both Monetix bKash purchases share (seed ../shared/seeds/003_2a4bc290b5abc9d3.txt):
callbacks, status polling, inspection and the result. MonetixGatePurchase (workflows/monetix_gate.py)
and PaymentPagePurchase (workflows/monetix_page.py) build on it.

Callbacks arrive as updates from the merchant endpoint, which has verified their signatures. Their
update ids come from the callback's operation, so a duplicate is absorbed; a stale or out-of-order
callback is acknowledged (so Monetix stops re-sending) but never moves the state backwards. A final
answer that never comes by callback is fetched with the status request, polled with backoff by
Temporal's retry policy.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from enum import Enum
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from contracts.common import DEFAULT_ACCOUNT, Provider, PROVIDER_HEARTBEAT
from contracts.money import format_bdt
from contracts.monetix import (
    CallbackAck,
    MonetixActivity,
    MonetixCallbackEvent,
    MonetixErrorKind,
    MonetixPurchaseResult,
    MonetixPurchaseState,
    MonetixStage,
    PaymentInstructions,
    StatusPoll,
)
from contracts.monetix_status import (
    AWAITING_CLARIFICATION,
    CODE_TRANSACTION_NOT_FOUND,
    SUCCESS,
    MonetixStatus,
)
from contracts.notifications import EventType
from workflows.bookkeeping import Bookkeeping
from workflows.notifications import Notifier

_REJECTED = [MonetixErrorKind.INVALID_REQUEST, MonetixErrorKind.REQUEST_REJECTED,
             MonetixErrorKind.DUPLICATE_PAYMENT, MonetixErrorKind.NOT_CONFIGURED]
# Gate calls: the first retry comes ≥ 10 s later, because the activity then asks the status request
# and Monetix asks for at least 10 s between a request and its status (§3.4).
GATE_CALL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=2.0,
                              maximum_interval=timedelta(minutes=2), maximum_attempts=10,
                              non_retryable_error_types=_REJECTED)
# The status poll: until Monetix reports what we wait for, with backoff.
STATUS_POLL = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=1.5,
                          maximum_interval=timedelta(minutes=5), maximum_attempts=0,
                          non_retryable_error_types=[MonetixErrorKind.INVALID_REQUEST,
                                                     MonetixErrorKind.REQUEST_REJECTED])

STATUS_MIN_DELAY = timedelta(seconds=10)
# §4.3 statuses ranked by how far a payment has gone: a callback never moves the state back.
_RANK = {AWAITING_CLARIFICATION: 1, "awaiting customer": 2, "awaiting customer action": 2}
_FINAL_RANK = 9

# The stages the merchant's order system is told of (issue 13 §1). "Instructions ready" is the
# Gate's payment instructions or the Payment Page's link.
EVENT_FOR_STAGE = {
    MonetixStage.AWAITING_TRANSACTION_ID: EventType.MONETIX_INSTRUCTIONS_READY,
    MonetixStage.AWAITING_CUSTOMER: EventType.MONETIX_INSTRUCTIONS_READY,
    MonetixStage.AWAITING_CLARIFICATION: EventType.MONETIX_AWAITING_CLARIFICATION,
    MonetixStage.SUCCESS: EventType.MONETIX_SUCCESS,
    MonetixStage.DECLINED: EventType.MONETIX_DECLINED,
    MonetixStage.EXPIRED: EventType.MONETIX_EXPIRED,
    MonetixStage.FAILED: EventType.MONETIX_FAILED,
}


def _rank(status: str, final: bool) -> int:
    return _FINAL_RANK if final else _RANK.get(status, 3)


class Next(Enum):
    """What a step of the lifecycle leaves to do."""

    GO_ON = "go on"
    END = "end: a final status is known, or a window ran out"


class MonetixPurchaseBase:
    """What both interfaces share: callbacks, status polling, inspection and the result."""

    interface = "gate"

    def _setup(self, payment_id: str, amount_poisha: int, provider_timeout: timedelta) -> None:
        self._payment_id = payment_id
        self._provider_timeout = provider_timeout
        self._state = MonetixPurchaseState(workflow_id=workflow.info().workflow_id,
                                           payment_id=payment_id, interface=self.interface,
                                           stage=MonetixStage.SALE, requested_poisha=amount_poisha)
        self._books = Bookkeeping(self._state, self._headline, shown_stage=MonetixStage.SALE.value)
        self._notes = Notifier(provider=Provider.MONETIX, invoice_number=payment_id,
                               account_id=self._account, on_problem=self._books.event)
        self._told: MonetixStage | None = None
        self._rank = 0
        self._final: MonetixStatus | None = None
        self._detail = ""
        # The purchase named an account this worker has no Monetix project for (ends FAILED).
        self._failed = False
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
        # Two projects of one merchant may use the same payment_id. An endpoint with account
        # settings routes each project's callbacks to its account's purchase and names the account;
        # one without them names the project, taken only by a purchase started for that project.
        project = getattr(getattr(self, "_req", None), "project_id", None)
        if event.account_id is not None and event.account_id != self._account:
            raise ValueError(f"callback of merchant account {event.account_id} (Monetix project "
                             f"{event.project_id}) refused by payment {self._payment_id} of "
                             f"account {self._account}")
        if event.project_id is not None and event.project_id != project and (
                event.account_id is None or project is not None):
            raise ValueError(f"callback of Monetix project {event.project_id} refused by payment "
                             f"{self._payment_id} of project {project or '(not recorded)'}")

    @property
    def _account(self) -> str:
        return getattr(getattr(self, "_req", None), "account_id", DEFAULT_ACCOUNT)

    def _apply(self, status: MonetixStatus, clarification_fields: dict[str, Any] | None,
               source: str) -> bool:
        rank = _rank(status.status, status.final)
        if self._final is not None or rank < self._rank:
            self._state.callbacks_ignored += source == "callback"
            self._books.event(f"{source} ignored: {status.status!r} after "
                              f"{self._state.stage.value}")
            return False
        self._rank = max(self._rank, rank)
        self._state.callbacks_applied += source == "callback"
        if status.display_data:
            self._state.display_data = list(status.display_data)
        if status.status == AWAITING_CLARIFICATION:
            self._state.clarification_fields = clarification_fields or {}
        if status.final:
            self._final = status
        self._books.event(f"{source}: payment {status.status!r}"
                          + (f", code {status.code} {status.message or ''}" if status.final
                             else ""))
        return True

    def _poll(self, poll: StatusPoll, why: str, retry: RetryPolicy = STATUS_POLL):
        return workflow.execute_activity(
            MonetixActivity.STATUS, poll, result_type=MonetixStatus,
            start_to_close_timeout=self._provider_timeout + timedelta(seconds=5),
            heartbeat_timeout=PROVIDER_HEARTBEAT,
            retry_policy=retry, summary=f"status of {self._payment_id} ({why})")

    async def _wait_or_poll(self, ready, wait: timedelta, wanted: list[str], why: str,
                            not_found_is_final: bool = False) -> None:
        """Wait ``wait`` for callbacks to make ``ready()`` true; then ask the status request, with
        backoff, until Monetix reports a wanted or final status (or a callback arrives)."""
        try:
            await workflow.wait_condition(lambda: ready() or self._final is not None,
                                          timeout=wait, timeout_summary=why)
            return
        except asyncio.TimeoutError:
            self._books.event(f"no callback within {wait}: polling the status request")
        if workflow.now() < self._status_allowed_at:
            try:
                await workflow.wait_condition(lambda: ready() or self._final is not None,
                                              timeout=self._status_allowed_at - workflow.now(),
                                              timeout_summary="10 s before a status request")
                return
            except asyncio.TimeoutError:
                pass
        poll = asyncio.ensure_future(self._poll(
            StatusPoll(payment_id=self._payment_id, wanted_statuses=wanted,
                       not_found_is_final=not_found_is_final, account_id=self._account), why))
        await workflow.wait_condition(lambda: ready() or self._final is not None or poll.done())
        if poll.done():
            self._apply(poll.result(), None, "status")
        else:
            poll.cancel()
            try:
                await poll
            except (asyncio.CancelledError, ActivityError):
                pass

    def _result(self, requested_poisha: int) -> MonetixPurchaseResult:
        final = self._final
        if final is None or self._failed:
            return MonetixPurchaseResult(payment_id=self._payment_id, requested_poisha=requested_poisha,
                                         outcome=MonetixStage.FAILED if self._failed
                                         else MonetixStage.EXPIRED, detail=self._detail)
        success = final.status == SUCCESS
        paid = final.paid_poisha if success else None
        return MonetixPurchaseResult(
            payment_id=self._payment_id,
            outcome=MonetixStage.SUCCESS if success else MonetixStage.DECLINED,
            requested_poisha=requested_poisha,
            # §4.5: "the amount specified in the final callback is the actual sum of money you will
            # receive" — credit that, never the requested amount.
            paid_poisha=paid, amount_changed=paid is not None and paid != requested_poisha,
            currency=final.sum_currency or "BDT",
            decline_code=None if success else final.code, decline_message=None if success
            else final.message, provider_payment_id=final.provider_payment_id,
            account_number=final.account_number, detail=self._detail)

    async def _finish(self, requested_poisha: int) -> MonetixPurchaseResult:
        result = self._result(requested_poisha)
        if result.outcome is MonetixStage.SUCCESS:
            self._state.paid_poisha = result.paid_poisha
            self._detail = self._detail or (
                f"paid {format_bdt(result.paid_poisha or 0)} BDT"
                + (f" (requested {format_bdt(requested_poisha)})" if result.amount_changed
                   else ""))
        elif result.outcome is MonetixStage.DECLINED:
            self._detail = self._detail or f"declined: {result.decline_code} {result.decline_message}"
        result.detail = self._detail
        self._set_stage(result.outcome, self._detail)
        await self._notes.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _set_stage(self, stage: MonetixStage, event: str | None = None, *,
                   show: bool = True) -> None:
        """``show=False`` for a stage that lasts one bounded call (bookkeeping's upsert rule)."""
        provider_payment_id = self._final.provider_payment_id if self._final is not None else None
        self._books.set_stage(stage, event, show=show, provider_payment_id=provider_payment_id)
        if stage in EVENT_FOR_STAGE and stage is not self._told:
            self._told = stage
            self._notes.emit(EVENT_FOR_STAGE[stage], stage=stage.value, last=stage.is_final,
                             amount_poisha=self._state.requested_poisha,
                             paid_poisha=self._state.paid_poisha,
                             provider_payment_id=provider_payment_id,
                             detail=self._detail if stage.is_final else None)

    def _headline(self) -> str:
        state = self._state
        amount = f"{format_bdt(state.requested_poisha)} BDT"
        if state.paid_poisha is not None and state.paid_poisha != state.requested_poisha:
            amount = (f"paid {format_bdt(state.paid_poisha)} BDT (requested "
                      f"{format_bdt(state.requested_poisha)})")
        return (f"**{state.stage.value}** · Monetix {self.interface} · payment "
                f"{self._payment_id} · {amount}")

    async def _final_or_expired(self) -> None:
        """A window ran out: one status request, so a payment that did complete is not lost."""
        if workflow.now() < self._status_allowed_at:
            await workflow.sleep(self._status_allowed_at - workflow.now(),
                                 summary="10 s before a status request")
        try:
            status = await self._poll(
                StatusPoll(payment_id=self._payment_id, not_found_is_final=True, accept_any=True,
                           account_id=self._account),
                "window over", RetryPolicy(maximum_attempts=3,
                                           initial_interval=timedelta(seconds=10)))
        except ActivityError:
            return  # Monetix unreachable: our side ends EXPIRED, the last error shows why
        if status.final and status.code != CODE_TRANSACTION_NOT_FOUND:
            self._apply(status, None, "status")  # never registered: nothing to report

    async def _stop_on_cancel(self) -> None:
        """An operator cancelled: stop waiting for the customer, but ask Monetix once so a payment
        that did complete is reported, not lost."""
        self._books.event(f"workflow cancelled by an operator during {self._state.stage.value}")
        if self._final is None:
            self._detail = "cancelled by an operator"
            await self._final_or_expired()

    def _instructions(self, payment_page_url: str | None = None) -> PaymentInstructions:
        return PaymentInstructions(workflow_id=self._state.workflow_id,
                                   payment_id=self._payment_id, stage=self._state.stage,
                                   display_data=self._state.display_data,
                                   clarification_fields=self._state.clarification_fields,
                                   payment_page_url=payment_page_url, detail=self._detail,
                                   amount_poisha=self._state.requested_poisha,
                                   transaction_id=self._state.transaction_id)
