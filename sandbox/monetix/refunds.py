"""Refunds of paid purchases (reference §3.6; statuses §4.3, operations §4.4, codes §6), as the
platform applies them:

    refund request ─▶ 200 ack (request_id) ─▶ operation "refund" processing (9999)
        ─ refund_processing_seconds later ─▶ success (0): ledger REFUND, payment.status
                                             "partially refunded" / "refunded", payment.sum = what is left
                                           └ decline (a `decline` fault, code 20000 by default): nothing moves
    each end ─▶ one signed callback with operation.type "refund" and payment.merchant_refund_id

Rules, in the order they are checked (each answers HTTP 400 with the §3.3 error body):
* 2004: general.payment_id, payment.amount or payment.currency missing;
* 3061: no such purchase; 3060: the purchase is not paid (awaiting, declined);
* 3230: payment.merchant_refund_id used before (by any refund, declined ones too, whatever the
  amount) — within the project, or within the payment with ``merchant_refund_id_scope="payment"``
  [I: the platform's scope is not documented]. Checked before the amount, so a re-sent refund
  always gets 3230, never 3283;
* 3284: another currency; 502: an amount that is not a positive integer;
* 3283: more than the remaining amount: the *paid* amount (§4.5: it may differ from the requested
  one) less succeeded refunds and those still processing [I].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import codes
from .codes import GateError
from .config import MonetixSandboxConfig
from .faults import FaultKind, Operation, Target
from .formats import monetix_time
from .model import LedgerKind, Payment, PaymentStatus, Refund, RefundStatus, field_value, missing

if TYPE_CHECKING:
    from sandbox.common.faults import FaultBook

    from .callbacks import CallbackOutbox
    from .formats import OperationIds

_REFUND_REQUIRED = ("general.payment_id", "payment.amount", "payment.currency")


def refund_operation(r: Refund, provider_id: int) -> dict[str, Any]:
    """The refund as an ``operation`` (callback) or an ``operations[]`` entry (status), §4.1."""
    total = {"amount": r.amount, "currency": r.currency}
    return {"id": r.operation_id, "type": "refund", "status": r.status.value,
            "date": monetix_time(r.updated_at), "created_date": monetix_time(r.created_at),
            "request_id": r.request_id, "sum_initial": dict(total), "sum_converted": dict(total),
            "code": r.code, "message": r.message,
            "provider": {"id": provider_id, "payment_id": r.provider_refund_id or "", "auth_code": ""}}


class RefundRules:
    """The refund part of :class:`~sandbox.monetix.state.MonetixSandbox` (a mixin: it shares the
    sandbox's payments, ledger, ids, faults and callbacks)."""

    config: MonetixSandboxConfig
    clock: Callable[[], float]
    faults: FaultBook
    ids: OperationIds
    outbox: CallbackOutbox
    payments: dict[tuple[int, str], Payment]
    counters: dict[str, int]

    if TYPE_CHECKING:
        def find(self, project_id: int | None, payment_id: Any) -> Payment | None: ...
        def ack(self, project_id: int, payment_id: str, request_id: str) -> dict: ...
        def signed_body(self, p: Payment, *, status_answer: bool = False,
                        refund: Refund | None = None) -> dict[str, Any]: ...
        def new_trx_id(self) -> str: ...
        def _record(self, kind: LedgerKind, p: Payment, amount: int, transaction_id: str | None,
                    wallet: str | None) -> None: ...

    def refund(self, body: Mapping[str, Any], project_id: int, request_id: str) -> dict:
        """``POST {refund_path}``: register the refund and acknowledge it (§3.3 shape); the result
        follows by callback."""
        self.counters["refund_requests"] += 1
        absent = [name for name in _REFUND_REQUIRED if missing(field_value(body, name))]
        if absent:
            raise GateError("2004", fields=absent)
        p = self.find(project_id, field_value(body, "general.payment_id"))
        if p is None:
            raise GateError("3061", field="general.payment_id")
        if not p.status.paid:
            raise GateError("3060", detail=f"payment {p.payment_id} is {p.status.value}; only a paid "
                                           "purchase can be refunded")
        merchant_refund_id = field_value(body, "payment.merchant_refund_id")
        if merchant_refund_id is not None:
            if not isinstance(merchant_refund_id, str) or not merchant_refund_id:
                raise GateError("502", field="payment.merchant_refund_id",
                                detail="payment.merchant_refund_id must be a non-empty string")
            if self._refund_id_used(p, merchant_refund_id):
                raise GateError("3230", field="payment.merchant_refund_id",
                                detail=f"merchant_refund_id {merchant_refund_id} was used before")
        if field_value(body, "payment.currency") != p.currency:
            raise GateError("3284", field="payment.currency")
        amount = field_value(body, "payment.amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise GateError("502", field="payment.amount",
                            detail="payment.amount must be a positive integer number of poisha")
        if amount > p.refundable_amount:
            processing = p.settled_amount - p.refunded_amount - p.refundable_amount
            raise GateError("3283", field="payment.amount", detail=(
                f"payment {p.payment_id} has {p.refundable_amount} poisha left to refund (paid "
                f"{p.settled_amount}, refunded {p.refunded_amount}, processing {processing}); {amount} asked"))
        description = field_value(body, "payment.description")
        callback_url = field_value(body, "general.merchant_callback_url") or p.callback_url \
            or self.config.default_callback_url
        now = self.clock()
        operation_id, _ = self.ids.next()
        r = Refund(operation_id, request_id, merchant_refund_id, amount, p.currency,
                   description if isinstance(description, str) else "",
                   callback_url if isinstance(callback_url, str) else None, now,
                   now + self.config.refund_processing_seconds, updated_at=now)
        decline = self.faults.take(Operation.REFUND, Target(p.project_id, p.payment_id),
                                   kinds={FaultKind.DECLINE})
        if decline is not None:
            r.decline_code = decline.spec.code or codes.REFUND_DECLINE
        p.refunds.append(r)
        self.complete_due_refunds()
        return self.ack(p.project_id, p.payment_id, request_id)

    def _refund_id_used(self, p: Payment, merchant_refund_id: str) -> bool:
        if self.config.merchant_refund_id_scope == "payment":
            scope = [p]
        else:
            scope = [q for q in self.payments.values() if q.project_id == p.project_id]
        return any(r.merchant_refund_id == merchant_refund_id for q in scope for r in q.refunds)

    def complete_due_refunds(self) -> None:
        """The provider's answer to every refund whose processing time is over (lazily, like the
        clarification deadline: on every request and by the served app's ticker)."""
        now = self.clock()
        for p in self.payments.values():
            for r in p.refunds:
                if r.status is RefundStatus.PROCESSING and now >= r.due_at:
                    self._finish_refund(p, r, now)

    def _finish_refund(self, p: Payment, r: Refund, now: float) -> None:
        if r.decline_code is not None:
            r.status, r.code = RefundStatus.DECLINE, r.decline_code
        else:
            r.status, r.code = RefundStatus.SUCCESS, codes.SUCCESS
            r.provider_refund_id = self.new_trx_id()
            self._record(LedgerKind.REFUND, p, r.amount, r.provider_refund_id, p.account_number)
            p.status = (PaymentStatus.REFUNDED if p.refunded_amount >= p.settled_amount
                        else PaymentStatus.PARTIALLY_REFUNDED)
            p.updated_at = now
        r.message, r.updated_at = codes.message(r.code), now
        self.outbox.emit(p.callbacks, Target(p.project_id, p.payment_id, p.status.value, "refund"),
                         self.signed_body(p, refund=r), r.callback_url, p.callback_delay_seconds)
