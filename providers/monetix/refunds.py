"""Monetix refunds (reference §3.6; callbacks §4.1, statuses §4.3/§4.4, codes §6): the refund
request's rules and body, the two refusals that are not what they seem (3230, 3283), and how our
refund is found again in a status answer.

What the platform tells us about a refund:
* The refund request's answer only acknowledges it (``status: success`` and a ``request_id``, as a
  sale's, §3.3). The result comes by a callback whose ``operation.type`` is ``refund``, or from the
  status request, whose ``operations[]`` then lists the refund beside the sale.
* ``payment.merchant_refund_id`` (§4.1 field inventory) is our refund id, echoed. Re-using it is
  refused with **3230**, so a re-sent refund can never move money twice: 3230 means "already
  registered", to be resolved by status, never a failure.
* **3283**: more than the payment's remaining amount.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from contracts.monetix import MonetixErrorKind
from contracts.monetix_requests import check_callback_url, check_currency, check_payment_id
from contracts.monetix_status import MonetixStatus, _amount, _obj, _text
from contracts.money import format_bdt
from contracts.refunds import RefundErrorKind
from providers.monetix.errors import MonetixInvalidRequest, MonetixRequestRejected

# §6 codes of the refund request.
CODE_DUPLICATE_REFUND = "3230"      # merchant_refund_id already used
CODE_REFUND_OVER_LIMIT = "3283"     # refund amount > what is left of the payment
CODE_REFUND_CURRENCY = "3284"       # refund currency ≠ payment currency
CODE_STATUS_FORBIDS = "3060"        # the payment's status does not allow a refund (not paid)
CODE_TRANSACTION_NOT_FOUND = "3061"  # no such payment: nothing to refund
# The platform's "try again" answers (§6: 601 Try again, 602 Network error, 2147 Lock error,
# 20601 Try again): nothing was registered, the same request may be sent again.
TRY_AGAIN_CODES = frozenset({"601", "602", "2147", "20601"})
# The payment itself cannot be refunded; fixing our configuration would not help.
NOT_REFUNDABLE_CODES = frozenset({CODE_STATUS_FORBIDS, CODE_TRANSACTION_NOT_FOUND})

REFUND_OPERATION = "refund"
# §4.4 operation statuses. A refund is final when it succeeded or ended in one of these; anything
# else (processing, awaiting ..., external processing, unknown) is still open.
OPERATION_SUCCESS = "success"
FAILED_OPERATION_STATUSES = frozenset(
    {"decline", "error", "internal error", "external error", "expired", "cancelled", "canceled",
     "invoice cancelled"})
# §4.3: what payment.status becomes once a refund succeeded.
REFUNDED_STATUSES = ("partially refunded", "refunded")

_DESCRIPTION_LIMIT = 255  # [I] Monetix publishes none; the refunds contract allows 255 for a reason


class MonetixDuplicateRefund(MonetixRequestRejected):
    """Code 3230: this merchant_refund_id is already registered at Monetix, e.g. by an earlier
    attempt whose answer was lost. Not a failure: find the refund with the status request."""

    # Not (yet) a member of contracts.monetix.MonetixErrorKind; activities never let it out.
    kind: ClassVar[str] = MonetixErrorKind.DUPLICATE_REFUND


class MonetixRefundOverLimit(MonetixRequestRejected):
    """Code 3283: the amount is more than the payment's remaining refundable amount."""

    kind: ClassVar[str] = RefundErrorKind.OVER_LIMIT


_HINTS = {
    CODE_DUPLICATE_REFUND: "a refund with this merchant_refund_id is already registered (perhaps its "
                           "answer was lost); find it with the status request, do not send it again",
    CODE_REFUND_OVER_LIMIT: "the payment has less left to refund; ask the status request what was "
                            "refunded already and refund at most the rest",
    CODE_REFUND_CURRENCY: "refund in the payment's currency (BDT)",
    CODE_STATUS_FORBIDS: "only a successful (paid) purchase can be refunded",
    CODE_TRANSACTION_NOT_FOUND: "Monetix has no purchase with this payment_id in this project",
}


def refund_rejection(err: MonetixRequestRejected) -> MonetixRequestRejected:
    """The refund's own reading of a rejection: 3230 and 3283 get classes of their own."""
    codes = {err.code, *(e.get("code") for e in err.errors)}
    cls: type[MonetixRequestRejected] = MonetixRequestRejected
    code = err.code
    for candidate, klass in ((CODE_DUPLICATE_REFUND, MonetixDuplicateRefund),
                             (CODE_REFUND_OVER_LIMIT, MonetixRefundOverLimit)):
        if candidate in codes:
            cls, code = klass, candidate
            break
    hint = _HINTS.get(code or "", "")
    if cls is MonetixRequestRejected and not hint:
        return err
    return cls(payment_id=err.payment_id or "", operation=err.operation, http_status=err.http_status,
               code=code, message=err.platform_message, errors=err.errors, hint=hint)


def refund_body(project_id: int, *, payment_id: Any, amount_poisha: Any, currency: Any,
                description: Any, merchant_refund_id: Any, callback_url: Any) -> dict[str, Any]:
    """The §3.6 body before signing, or MonetixInvalidRequest listing every broken rule.

    The amount is any positive number of poisha: the 10-BDT step is a rule of the bKash *sale*, and
    what the customer paid (and so what can be refunded) need not follow it (§4.5).
    """
    problems: list[str] = []

    def check(rule: Any, value: Any, name: str) -> None:
        try:
            rule(value, name)
        except ValueError as exc:
            problems.append(str(exc))

    check(check_payment_id, payment_id, "general.payment_id")
    check(_check_refund_amount, amount_poisha, "payment.amount")
    check(check_currency, currency, "payment.currency")
    check(_check_description, description, "payment.description")
    check(_check_merchant_refund_id, merchant_refund_id, "payment.merchant_refund_id")
    check(check_callback_url, callback_url, "general.merchant_callback_url")
    if problems:
        raise MonetixInvalidRequest(problems, payment_id=payment_id if isinstance(payment_id, str) else None)
    general: dict[str, Any] = {"project_id": project_id, "payment_id": payment_id}
    if callback_url is not None:
        general["merchant_callback_url"] = callback_url
    return {"general": general,
            "payment": {"amount": amount_poisha, "currency": currency, "description": description,
                        "merchant_refund_id": merchant_refund_id}}


def _check_refund_amount(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of poisha (minor units), e.g. 30000 for "
                         f"300.00 BDT; got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} {value} ({format_bdt(value)} BDT) must be positive")


def _check_description(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be the refund's reason, a non-empty string")
    if len(value) > _DESCRIPTION_LIMIT:
        raise ValueError(f"{name} is {len(value)} characters; at most {_DESCRIPTION_LIMIT}")
    if not value.isprintable():
        raise ValueError(f"{name} {value!r} contains control characters")


def _check_merchant_refund_id(value: Any, name: str) -> None:
    # Required by us although optional at Monetix: it is what makes a re-sent refund answer 3230
    # instead of refunding twice.
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be your refund's unique id, a non-empty string (it makes a "
                         "re-sent refund harmless: Monetix answers 3230)")
    if len(value) > 255 or not value.isprintable() or set(value) & set("<>&"):
        raise ValueError(f"{name} {value!r} must be at most 255 printable characters without < > &")


# ------------------------------------------------------------------------------ reading refunds


class MonetixRefundOperation(BaseModel):
    """One ``operations[]`` entry (or a callback's ``operation``) of type ``refund``."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None  # §4.1: a 16-digit integer, kept as text
    status: str | None = None
    request_id: str | None = None
    amount_poisha: int | None = None  # operation.sum_initial.amount: what this refund returns
    currency: str | None = None
    code: str | None = None
    message: str | None = None
    date: str | None = None
    created_date: str | None = None
    # Not in the §4.1 operation inventory; read in case a project's callbacks carry it there.
    merchant_refund_id: str | None = None
    provider_refund_id: str | None = None  # operation.provider.payment_id

    @property
    def succeeded(self) -> bool:
        # operation.status alone: a "success" with an odd code still moved the money, and calling
        # it failed would invite a second refund.
        return self.status == OPERATION_SUCCESS

    @property
    def failed(self) -> bool:
        return self.status in FAILED_OPERATION_STATUSES

    @property
    def final(self) -> bool:
        return self.succeeded or self.failed


class MonetixRefunds(BaseModel):
    """A payment's refunds as a status answer (or a refund callback) shows them.

    ``balance_poisha`` is ``payment.sum.amount``: after refunds the platform reports what is left of
    the payment there ("Payment balance", woocommerce-ecommpay EcpModuleRefund). ``merchant_refund_id``
    is ``payment.merchant_refund_id``: in a callback the refund it is about, in a status answer [I]
    the latest refund's.
    """

    model_config = ConfigDict(frozen=True)

    payment_id: str
    payment_status: str
    balance_poisha: int | None = None
    merchant_refund_id: str | None = None
    refunds: list[MonetixRefundOperation] = []
    snapshot: MonetixStatus

    @classmethod
    def from_body(cls, data: Mapping[str, Any], snapshot: MonetixStatus | None = None) -> MonetixRefunds:
        """Read a status answer (``operations[]``) or a refund callback (``operation``); ValueError
        for a body without payment.id / payment.status or with an amount that is not whole."""
        snapshot = snapshot or MonetixStatus.from_body(data)
        payment = _obj(data.get("payment"))
        raw_ops = data.get("operations")
        if not isinstance(raw_ops, list):
            raw_ops = [data["operation"]] if isinstance(data.get("operation"), Mapping) else []
        refunds = [_refund_operation(op) for op in raw_ops
                   if isinstance(op, Mapping) and _text(op.get("type")) == REFUND_OPERATION]
        return cls(payment_id=snapshot.payment_id, payment_status=snapshot.status,
                   balance_poisha=snapshot.paid_poisha,
                   merchant_refund_id=_text(payment.get("merchant_refund_id")),
                   refunds=refunds, snapshot=snapshot)

    def find(self, *, request_id: str | None = None, merchant_refund_id: str | None = None,
             amount_poisha: int | None = None,
             known_operation_ids: Collection[str] | None = None) -> MonetixRefundOperation | None:
        """Our refund, by the strongest evidence there is:

        1. ``request_id`` (the acknowledgement's, which the operation carries, §3.3);
        2. ``merchant_refund_id`` on the operation itself, when the project's answers carry it;
        3. ``payment.merchant_refund_id`` naming our refund: then it is the newest refund operation
           (refunds of one payment are serialized by the refunds workflow);
        4. given ``known_operation_ids`` (the refund operations the caller already accounts for): the
           newest refund operation of ``amount_poisha`` that is not one of them.

        None when none of these points at an operation. Without 4, "None" does not prove that the
        refund was never registered; it only means it cannot be told apart.
        """
        newest_first = list(reversed(self.refunds))
        if request_id:
            for op in newest_first:
                if op.request_id == request_id:
                    return op
        if merchant_refund_id:
            for op in newest_first:
                if op.merchant_refund_id == merchant_refund_id:
                    return op
            if self.merchant_refund_id == merchant_refund_id and newest_first:
                return newest_first[0]
        if known_operation_ids is not None and amount_poisha is not None:
            known = set(known_operation_ids)
            for op in newest_first:
                if op.amount_poisha == amount_poisha and op.id not in known:
                    return op
        return None


def _refund_operation(op: Mapping[str, Any]) -> MonetixRefundOperation:
    initial = _obj(op.get("sum_initial"))
    return MonetixRefundOperation(
        id=_text(op.get("id")), status=_text(op.get("status")), request_id=_text(op.get("request_id")),
        amount_poisha=_amount(initial.get("amount"), "operation.sum_initial.amount"),
        currency=_text(initial.get("currency")), code=_text(op.get("code")),
        message=_text(op.get("message")), date=_text(op.get("date")),
        created_date=_text(op.get("created_date")),
        merchant_refund_id=_text(op.get("merchant_refund_id")),
        provider_refund_id=_text(_obj(op.get("provider")).get("payment_id")) or None)
