"""What a Monetix payment's status says: the status answer (§3.4) or a callback body (§4.1), read
into one model. Both the Gate client (status answers) and the merchant endpoint (verified callbacks)
read bodies with ``MonetixStatus.from_body``, so the workflows see one shape whichever way the news
came.

Amounts are integer poisha; ``paid_poisha`` is what Monetix says was paid, which for bKash may
differ from what was asked (§4.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

# §4.3. Both `cancelled` and `canceled` (the PHP SDK renamed it in 2025); `error` also means "never
# registered" in a status answer. Everything else (processing, awaiting ...) is intermediate.
FINAL_PAYMENT_STATUSES = frozenset(
    {
        "success", "decline", "cancelled", "canceled", "refunded", "partially refunded", "reversed",
        "partially reversed", "error", "expired", "invoice cancelled", "internal error", "external error",
        "partially paid",
    }
)  # fmt: skip


# §6 codes with a meaning of their own.
CODE_PAYMENT_ID_EXISTS = "3041"  # a sale for a payment_id already registered
CODE_TRANSACTION_NOT_FOUND = "3061"  # no payment with this payment_id: never registered
SUCCESS = "success"
REFUNDED = ("refunded", "partially refunded")  # a purchase's status after refunds (§3.6)
REFUND_OPERATION = "refund"  # operation.type of a refund's callback
AWAITING_CLARIFICATION = "awaiting clarification"
AWAITING_CUSTOMER = ("awaiting customer", "awaiting customer action")


class MonetixErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str | None = None
    field: str | None = None
    message: str | None = None


class MonetixDisplayItem(BaseModel):
    """One ``display_data`` entry: the payment instructions to show the customer (§4.2)."""

    model_config = ConfigDict(frozen=True)

    type: str | None = None
    title: str | None = None
    data: str | None = None


class MonetixOperation(BaseModel):
    model_config = ConfigDict(frozen=True)

    # §4.1: operation ids are 16-digit integers; kept as text so no consumer rounds them.
    id: str | None = None
    type: str | None = None
    status: str | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    date: str | None = None
    created_date: str | None = None
    initial_poisha: int | None = Field(
        default=None, validation_alias=AliasChoices("initial_poisha", "sum_initial_amount"))
    sum_initial_currency: str | None = None
    provider_payment_id: str | None = None


class MonetixStatus(BaseModel):
    """A snapshot of one payment: the status answer (§3.4), or equally a callback body (§4.1).

    ``code``/``message``/``provider_payment_id`` come from the latest operation. ``paid_poisha`` is what
    Monetix says was paid, which for bKash may differ from what was asked (§4.5): credit this, not the
    requested amount.
    """

    model_config = ConfigDict(frozen=True)

    payment_id: str
    status: str
    final: bool
    operations: list[MonetixOperation] = []
    code: str | None = None
    message: str | None = None
    # Read as "sum_amount" too: the name in histories of purchases from before the rename.
    paid_poisha: int | None = Field(
        default=None, validation_alias=AliasChoices("paid_poisha", "sum_amount"))
    sum_currency: str | None = None
    account_number: str | None = None
    provider_payment_id: str | None = None
    display_data: list[MonetixDisplayItem] = []
    errors: list[MonetixErrorDetail] = []
    signature_verified: bool = False

    @classmethod
    def from_body(cls, data: Mapping[str, Any], *, signature_verified: bool = False) -> MonetixStatus:
        """Read a status answer (``operations[]``) or a callback (``operation``); raises ValueError when
        the body has no ``payment.id``/``payment.status`` or an amount that is not a whole number."""
        payment = _obj(data.get("payment"))
        payment_id = _text(payment.get("id"))
        status = _text(payment.get("status"))
        if not payment_id or not status:
            raise ValueError("the body has no payment.id and payment.status")
        raw_ops = data.get("operations")
        if not isinstance(raw_ops, list):
            raw_ops = [data["operation"]] if isinstance(data.get("operation"), Mapping) else []
        operations = [_operation(op) for op in raw_ops if isinstance(op, Mapping)]
        latest = operations[-1] if operations else None
        total = _obj(payment.get("sum"))
        account = _obj(data.get("account"))
        display = data.get("display_data")
        errors = data.get("errors")
        return cls(
            payment_id=payment_id,
            status=status,
            final=status in FINAL_PAYMENT_STATUSES,
            operations=operations,
            code=latest.code if latest else _text(payment.get("result_code")),
            message=latest.message if latest else _text(payment.get("result_message")),
            paid_poisha=_amount(total.get("amount"), "payment.sum.amount"),
            sum_currency=_text(total.get("currency")),
            account_number=_text(account.get("number")),
            provider_payment_id=latest.provider_payment_id if latest else None,
            display_data=[
                MonetixDisplayItem(type=_text(d.get("type")), title=_text(d.get("title")), data=_text(d.get("data")))
                for d in (display if isinstance(display, list) else [])
                if isinstance(d, Mapping)
            ],
            errors=_error_details(errors),
            signature_verified=signature_verified,
        )



def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (Mapping, list)):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)  # codes arrive as "0" or 0 depending on the source (§6); RawNumber keeps its text


def _amount(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is a boolean, not an amount")
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if number != number.to_integral_value():
        raise ValueError(f"{name} {value} is not a whole number of minor units")
    return int(number)


def _operation(op: Mapping[str, Any]) -> MonetixOperation:
    initial = _obj(op.get("sum_initial"))
    return MonetixOperation(
        id=_text(op.get("id")),
        type=_text(op.get("type")),
        status=_text(op.get("status")),
        code=_text(op.get("code")),
        message=_text(op.get("message")),
        request_id=_text(op.get("request_id")),
        date=_text(op.get("date")),
        created_date=_text(op.get("created_date")),
        initial_poisha=_amount(initial.get("amount"), "operation.sum_initial.amount"),
        sum_initial_currency=_text(initial.get("currency")),
        provider_payment_id=_text(_obj(op.get("provider")).get("payment_id")),
    )


def _error_details(errors: Any) -> list[MonetixErrorDetail]:
    if not isinstance(errors, list):
        return []
    return [
        MonetixErrorDetail(code=_text(e.get("code")), field=_text(e.get("field")), message=_text(e.get("message")))
        for e in errors
        if isinstance(e, Mapping)
    ]


# ---------------------------------------------------------------------------------------- client

