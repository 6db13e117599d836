"""Monetix (ECOMMPAY white-label) Gate client and Payment Page links for bKash purchases.

Shapes: the Monetix bKash page (the seed document: sale, clarification with the bKash transaction ID,
Payment Page parameters) and ../shared/reference/monetix-gate.md (hosts §1, signing §2, Gate §3,
callbacks and statuses §4, Payment Page §5, codes §6).

What the Gate tells us, and what it does not:
* A sale/clarification answer (HTTP 200, ``status: success``) only says "accepted for processing"
  (§3.3). The payment result comes by callback or by the status request.
* Without a clear answer (5xx, timeout, dropped connection, garbage) the request may or may not have
  been registered. That is :class:`MonetixResultUnknown`: resolve it with :meth:`MonetixGateClient.status`,
  never by re-sending the sale (§3.3, §8.4).

Pure module: pydantic and httpx only, so the activities, the merchant endpoint and the sandbox tests
share it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from providers.monetix_signing import extract_signature, loads, sign, sign_request, verify

__all__ = [
    "MONETIX_BKASH_STEP",
    "MonetixAck",
    "MonetixBadSignature",
    "MonetixClarification",
    "MonetixCustomer",
    "MonetixDisplayItem",
    "MonetixDuplicatePayment",
    "MonetixError",
    "MonetixErrorDetail",
    "MonetixGateClient",
    "MonetixGateConfig",
    "MonetixInvalidRequest",
    "MonetixOperation",
    "MonetixPaymentNotFound",
    "MonetixPaymentPageConfig",
    "MonetixRequestRejected",
    "MonetixResultUnknown",
    "MonetixSaleRequest",
    "MonetixStatus",
    "PaymentPageParams",
    "build_payment_page_url",
    "clarification_problems",
    "epay_widget_params",
    "FINAL_PAYMENT_STATUSES",
]

log = logging.getLogger(__name__)

# Seed, "Special considerations": the BDT amount must be whole and a multiple of 10.00 BDT.
MONETIX_BKASH_STEP = 1000  # poisha
# Seed, Payment Page table: `force_payment_method: 'bkash-wallet'` skips the method selection page.
BKASH_PAYMENT_METHOD = "bkash-wallet"

# §4.3. Both `cancelled` and `canceled` (the PHP SDK renamed it in 2025); `error` also means "never
# registered" in a status answer. Everything else (processing, awaiting ...) is intermediate.
FINAL_PAYMENT_STATUSES = frozenset(
    {
        "success", "decline", "cancelled", "canceled", "refunded", "partially refunded", "reversed",
        "partially reversed", "error", "expired", "invoice cancelled", "internal error", "external error",
        "partially paid",
    }
)  # fmt: skip

# §6 codes with a meaning of their own for this client.
CODE_PAYMENT_ID_EXISTS = "3041"
CODE_TRANSACTION_NOT_FOUND = "3061"


def _fmt_bdt(minor: int) -> str:
    """9550 -> "95.50": poisha to a BDT amount for messages. Integer arithmetic only, never float."""
    sign_ = "-" if minor < 0 else ""
    taka, poisha = divmod(abs(minor), 100)
    return f"{sign_}{taka}.{poisha:02d}"


# ------------------------------------------------------------------------------------------ errors


class MonetixError(Exception):
    """Base of every Monetix failure. ``kind`` is stable: activities use it as the Temporal error type.

    Messages say what happened, to which payment, and what to do. They never contain the secret key
    or a signature: the client scrubs both from anything the platform echoes back.
    """

    kind: ClassVar[str] = "MonetixError"

    def __init__(self, message: str, *, payment_id: str | None = None) -> None:
        self.payment_id = payment_id
        super().__init__(message)


class MonetixInvalidRequest(MonetixError):
    """The request broke a Monetix rule and was not sent. Fix the data; retrying cannot help."""

    kind: ClassVar[str] = "MonetixInvalidRequest"

    def __init__(self, problems: list[str], *, payment_id: str | None = None) -> None:
        self.problems = list(problems)
        where = f" for payment {payment_id}" if payment_id else ""
        super().__init__(
            f"Monetix request{where} not sent: " + "; ".join(self.problems), payment_id=payment_id
        )

    @classmethod
    def from_validation_error(
        cls, exc: ValidationError, *, payment_id: str | None = None
    ) -> MonetixInvalidRequest:
        """Turn a pydantic error from one of this module's models into merchant words."""
        return cls([_problem_text(err) for err in exc.errors()], payment_id=payment_id)


class MonetixRequestRejected(MonetixError):
    """Monetix answered and refused the request (4xx, or ``status: error``). Non-retryable as is.

    ``message`` carries the platform's own words; ``code`` is the §6 code when the platform gave one.
    """

    kind: ClassVar[str] = "MonetixRequestRejected"

    def __init__(
        self,
        *,
        payment_id: str,
        operation: str,
        http_status: int,
        code: str | None,
        message: str,
        errors: list[dict[str, str]] | None = None,
        hint: str = "",
    ) -> None:
        self.operation = operation
        self.http_status = http_status
        self.code = code
        self.platform_message = message
        self.errors = list(errors or [])
        details = "; ".join(
            ": ".join(x for x in (e.get("field"), e.get("code"), e.get("message")) if x) for e in self.errors
        )
        text = f"Monetix rejected the {operation} for payment {payment_id} (HTTP {http_status}"
        text += f", code {code}" if code else ""
        text += f"): {message or 'no message'}"
        text += f" [{details}]" if details else ""
        text += f"; {hint}" if hint else ""
        super().__init__(text, payment_id=payment_id)


class MonetixDuplicatePayment(MonetixRequestRejected):
    """Code 3041 on a sale: this payment_id is already registered (§3.1), e.g. by an earlier attempt
    whose answer was lost. Not a decline: resolve with the status request."""

    kind: ClassVar[str] = "MonetixDuplicatePayment"


class MonetixPaymentNotFound(MonetixError):
    """Code 3061 from the status request: Monetix has no payment with this payment_id (§3.4)."""

    kind: ClassVar[str] = "MonetixPaymentNotFound"

    def __init__(self, payment_id: str, message: str = "Transaction not found") -> None:
        self.platform_message = message
        super().__init__(
            f"Monetix has no payment {payment_id} (code 3061: {message}); the sale was never registered, "
            "so it is safe to send it (once) with this payment_id",
            payment_id=payment_id,
        )


class MonetixResultUnknown(MonetixError):
    """No usable answer (5xx, timeout, dropped connection, unreadable body): the request may or may
    not have taken effect (§3.3)."""

    kind: ClassVar[str] = "MonetixResultUnknown"

    _WHAT_TO_DO: ClassVar[dict[str, str]] = {
        "sale": "resolve with the status request (at least 10 s later, §3.4), do not re-send the sale",
        "clarification": "resolve with the status request before sending the transaction ID again",
        "status": "the status request changes nothing at Monetix and may be repeated",
    }

    def __init__(self, *, payment_id: str, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        todo = self._WHAT_TO_DO.get(operation, "resolve with the status request")
        super().__init__(
            f"Monetix {operation} for payment {payment_id}: result unknown ({reason}); {todo}",
            payment_id=payment_id,
        )


class MonetixBadSignature(MonetixResultUnknown):
    """A status answer whose signature does not verify with our secret key.

    A subclass of :class:`MonetixResultUnknown` on purpose: nothing in that answer may be trusted, so
    the state of the payment is still unknown. Usual cause: the wrong project's secret key (test and
    production are separate projects, §1), or something rewriting the response.
    """

    kind: ClassVar[str] = "MonetixBadSignature"

    def __init__(self, *, payment_id: str, operation: str) -> None:
        super().__init__(
            payment_id=payment_id,
            operation=operation,
            reason="the answer's signature does not match our secret key: check MONETIX secret key and "
            "project_id, nothing in the answer was used",
        )


# -------------------------------------------------------------------------------- request models

# Names the Monetix docs use for our fields, so that messages speak the merchant's language.
_WIRE_NAMES = {
    "payment_id": "general.payment_id",
    "amount": "payment.amount",
    "currency": "payment.currency",
    "description": "payment.description",
    "account_number": "account.number",
    "customer": "customer",
    "id": "customer.id",
    "ip_address": "customer.ip_address",
    "first_name": "customer.first_name",
    "last_name": "customer.last_name",
    "email": "customer.email",
    "fields": "additional_data",
    "merchant_callback_url": "general.merchant_callback_url",
}
_PP_WIRE_NAMES = {
    "payment_id": "payment_id",
    "amount": "payment_amount",
    "currency": "payment_currency",
    "description": "payment_description",
    "account_number": "customer_account_number",
    "customer_id": "customer_id",
    "first_name": "customer_first_name",
    "last_name": "customer_last_name",
    "email": "customer_email",
    "merchant_callback_url": "merchant_callback_url",
}


def _problem_text(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if err.get("type") == "value_error" and "error" in ctx:
        # Our validators already wrote the full sentence, field name included.
        return str(ctx["error"])
    loc = [str(p) for p in err.get("loc", ())]
    name = _WIRE_NAMES.get(loc[-1], ".".join(loc)) if loc else "request"
    if err.get("type") == "missing":
        return f"{name} is required"
    if err.get("type") == "extra_forbidden":
        return f"{name} is not a field Monetix knows here; remove it"
    return f"{name}: {err.get('msg', 'invalid')}"


# Matched with fullmatch: `$` alone would also accept a trailing newline ("01712345678\n").
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_DIGITS = re.compile(r"[0-9]+")


def _check_payment_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string (unique within the Monetix project)")
    if len(value) > 255:
        raise ValueError(f"{name} is {len(value)} characters; Monetix accepts at most 255")
    if not value.isprintable():
        raise ValueError(f"{name} {value!r} contains control characters; use printable characters only")
    return value


def _check_amount(value: Any, name: str) -> int:
    # Strictly int: a float (95.5), a bool or a string ("9550") means the caller's unit is unclear.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{name} must be an integer number of poisha (minor units), e.g. 100000 for 1000.00 BDT; "
            f"got {type(value).__name__} {value!r}"
        )
    if value <= 0:
        raise ValueError(f"{name} {value} ({_fmt_bdt(value)} BDT) must be positive")
    if value % MONETIX_BKASH_STEP:
        lower = value - value % MONETIX_BKASH_STEP
        upper = lower + MONETIX_BKASH_STEP
        options = (
            f"{lower} ({_fmt_bdt(lower)} BDT) or {upper} ({_fmt_bdt(upper)} BDT)"
            if lower
            else f"{upper} ({_fmt_bdt(upper)} BDT)"
        )
        raise ValueError(
            f"{name} {value} ({_fmt_bdt(value)} BDT) is not a multiple of 10 BDT (Monetix bKash rule); "
            f"send {options}"
        )
    return value


def _check_currency(value: Any, name: str) -> str:
    if value != "BDT":
        raise ValueError(f"{name} {value!r} is not supported: Monetix bKash takes BDT only; send 'BDT'")
    return value


def _check_account_number(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DIGITS.fullmatch(value) or len(value) > 12:
        raise ValueError(
            f"{name} {value!r} must be the customer's bKash account number, digits only, at most 12 "
            "(Monetix bKash rule), e.g. '01712345678'"
        )
    return value


def _check_email(value: Any, name: str) -> str:
    if (not isinstance(value, str) or len(value) > 254 or not value.isprintable()
            or not _EMAIL.fullmatch(value)):
        raise ValueError(f"{name} {value!r} is not a well-formed email address (like name@example.com)")
    return value


def _check_ip(value: Any, name: str) -> str:
    try:
        if not isinstance(value, str):
            # ipaddress also takes an int (and so a bool): 5 would become "0.0.0.5", sent by nobody.
            raise TypeError(name)
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise ValueError(
            f"{name} {value!r} is not an IPv4 or IPv6 address; send the customer's device IP, "
            "e.g. 198.51.100.47"
        ) from None


def _check_text(value: Any, name: str, *, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be the {what}, a non-empty string")
    if not value.isprintable():
        raise ValueError(f"{name} {value!r} contains control characters")
    return value


def _check_callback_url(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _is_http_url(value):
        raise ValueError(f"{name} {value!r} must be an absolute http(s) URL where Monetix can POST callbacks")
    return value


def _is_http_url(value: str) -> bool:
    # Monetix must be able to POST to it: no whitespace or control character anywhere (they would be
    # signed verbatim into a Payment Page link), a host, and a port that is a number.
    if not value.isprintable() or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for "host:abc" or a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class MonetixCustomer(BaseModel):
    """The Gate ``customer`` object; all five fields are "strictly required" for bKash (seed, Table 2)."""

    model_config = _FROZEN

    id: str
    ip_address: str
    first_name: str
    last_name: str
    email: str

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        return _check_text(v, "customer.id", what="customer's unique ID in your project")

    @field_validator("ip_address", mode="before")
    @classmethod
    def _ip(cls, v: Any) -> str:
        return _check_ip(v, "customer.ip_address")

    @field_validator("first_name", mode="before")
    @classmethod
    def _first(cls, v: Any) -> str:
        return _check_text(v, "customer.first_name", what="customer's first name")

    @field_validator("last_name", mode="before")
    @classmethod
    def _last(cls, v: Any) -> str:
        return _check_text(v, "customer.last_name", what="customer's last name")

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, v: Any) -> str:
        return _check_email(v, "customer.email")


class MonetixSaleRequest(BaseModel):
    """A bKash purchase through Gate. ``amount`` is integer poisha (minor units): 100000 = 1000.00 BDT."""

    model_config = _FROZEN

    payment_id: str
    amount: int
    currency: str = "BDT"
    customer: MonetixCustomer
    account_number: str | None = None
    description: str | None = None

    @field_validator("payment_id", mode="before")
    @classmethod
    def _payment_id(cls, v: Any) -> str:
        return _check_payment_id(v, "general.payment_id")

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> int:
        return _check_amount(v, "payment.amount")

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any) -> str:
        return _check_currency(v, "payment.currency")

    @field_validator("account_number", mode="before")
    @classmethod
    def _account(cls, v: Any) -> str | None:
        return _check_account_number(v, "account.number")

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, v: Any) -> str | None:
        if v is not None and not isinstance(v, str):
            raise ValueError(f"payment.description must be a string, got {type(v).__name__}")
        return v


class MonetixClarification(BaseModel):
    """The data Monetix asked for, sent as ``additional_data`` (seed: ``transaction_id`` for bKash).

    ``transaction_id`` is not forced here: §3.5 says the platform lists the fields it wants.
    """

    model_config = _FROZEN

    payment_id: str
    fields: dict[str, str] = Field(min_length=1)

    @field_validator("payment_id", mode="before")
    @classmethod
    def _payment_id(cls, v: Any) -> str:
        return _check_payment_id(v, "general.payment_id")

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> dict[str, str]:
        if not isinstance(v, Mapping) or not v:
            raise ValueError(
                "additional_data must name at least one field, e.g. {'transaction_id': '<bKash TrxID>'}"
            )
        for key, value in v.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"additional_data key {key!r} must be a non-empty string")
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"additional_data.{key} must be a non-empty string (what the customer got from bKash)"
                )
        return dict(v)


class PaymentPageParams(BaseModel):
    """A bKash purchase through the Payment Page (seed, Table 1). Same rules as the Gate sale.

    The customer's IP is not a Payment Page parameter: the page sees the browser itself.
    """

    model_config = _FROZEN

    payment_id: str
    amount: int
    currency: str = "BDT"
    customer_id: str
    first_name: str
    last_name: str
    email: str
    account_number: str | None = None
    description: str | None = None
    merchant_callback_url: str | None = None

    @field_validator("payment_id", mode="before")
    @classmethod
    def _payment_id(cls, v: Any) -> str:
        return _check_payment_id(v, "payment_id")

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> int:
        return _check_amount(v, "payment_amount")

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any) -> str:
        return _check_currency(v, "payment_currency")

    @field_validator("customer_id", mode="before")
    @classmethod
    def _customer_id(cls, v: Any) -> str:
        return _check_text(v, "customer_id", what="customer's unique ID in your project")

    @field_validator("first_name", mode="before")
    @classmethod
    def _first(cls, v: Any) -> str:
        return _check_text(v, "customer_first_name", what="customer's first name")

    @field_validator("last_name", mode="before")
    @classmethod
    def _last(cls, v: Any) -> str:
        return _check_text(v, "customer_last_name", what="customer's last name")

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, v: Any) -> str:
        return _check_email(v, "customer_email")

    @field_validator("account_number", mode="before")
    @classmethod
    def _account(cls, v: Any) -> str | None:
        return _check_account_number(v, "customer_account_number")

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, v: Any) -> str | None:
        if v is not None and not isinstance(v, str):
            raise ValueError(f"payment_description must be a string, got {type(v).__name__}")
        return v

    @field_validator("merchant_callback_url", mode="before")
    @classmethod
    def _callback(cls, v: Any) -> str | None:
        return _check_callback_url(v, "merchant_callback_url")


# --------------------------------------------------------------------------------- configuration


class MonetixGateConfig(BaseModel):
    """Where and as whom to call Gate. Test and production are separate projects with separate keys (§1)."""

    model_config = ConfigDict(frozen=True)

    base_url: str = "https://api.trxhost.com"  # §1, Monetix Gate host
    project_id: int = Field(gt=0)
    secret_key: SecretStr
    # §3.2: the bKash sale path is inferred from the wallet family; configurable until Monetix confirms.
    sale_path: str = "/v2/payment/wallet/bkash/sale"
    clarification_path: str = "/v2/payment/clarification"
    status_path: str = "/v2/payment/status"
    # DESIGN: the 30 s provider timeout is both the HTTP timeout and the activity's start-to-close.
    timeout_seconds: float = Field(default=30, gt=0)


class MonetixPaymentPageConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_url: str = "https://paymentpage.trxhost.com"  # §1, Monetix Payment Page host
    project_id: int = Field(gt=0)
    secret_key: SecretStr


# ------------------------------------------------------------------------------------- responses


class MonetixAck(BaseModel):
    """Gate accepted the request for processing (§3.3). Not a payment result.

    ``request_id`` matches ``operation.request_id`` in later callbacks; it is None only if Monetix
    omitted it from an otherwise successful answer.
    """

    model_config = ConfigDict(frozen=True)

    request_id: str | None
    payment_id: str


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
    sum_initial_amount: int | None = None
    sum_initial_currency: str | None = None
    provider_payment_id: str | None = None


class MonetixStatus(BaseModel):
    """A snapshot of one payment: the status answer (§3.4), or equally a callback body (§4.1).

    ``code``/``message``/``provider_payment_id`` come from the latest operation. ``sum_amount`` is what
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
    sum_amount: int | None = None
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
            sum_amount=_amount(total.get("amount"), "payment.sum.amount"),
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
        sum_initial_amount=_amount(initial.get("amount"), "operation.sum_initial.amount"),
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


class _Answer(NamedTuple):
    http_status: int
    data: Mapping[str, Any]
    sent_signature: str  # kept only to scrub it from error texts


class MonetixGateClient:
    """Async Gate client over a shared ``httpx.AsyncClient`` (connection pooling is the caller's)."""

    def __init__(self, http: httpx.AsyncClient, config: MonetixGateConfig) -> None:
        self._http = http
        self._config = config

    def __repr__(self) -> str:
        return f"MonetixGateClient(base_url={self._config.base_url!r}, project_id={self._config.project_id})"

    async def sale(self, req: MonetixSaleRequest, callback_url: str) -> MonetixAck:
        """Start a bKash purchase (seed, "Request"). The answer is an acknowledgement only; the
        payment instructions (``display_data``) and the result come by callback or status."""
        req = _revalidate(MonetixSaleRequest, req, getattr(req, "payment_id", None))
        try:
            _check_callback_url(callback_url, "general.merchant_callback_url")
        except ValueError as exc:
            raise MonetixInvalidRequest([str(exc)], payment_id=req.payment_id) from None
        body: dict[str, Any] = {
            "general": {
                "project_id": self._config.project_id,
                "payment_id": req.payment_id,
                "merchant_callback_url": callback_url,
            },
            "customer": req.customer.model_dump(),
            "payment": {"currency": req.currency, "amount": req.amount},
        }
        if req.account_number is not None:
            body["account"] = {"number": req.account_number}
        if req.description is not None:
            body["payment"]["description"] = req.description
        return self._ack(await self._post("sale", self._config.sale_path, req.payment_id, body), req.payment_id, "sale")

    async def clarification(self, payment_id: str, additional_data: dict[str, str]) -> MonetixAck:
        """Send what Monetix asked for, for bKash the customer's transaction ID (seed, "Submitting the
        transaction ID"). The result still comes by callback or status."""
        try:
            clar = MonetixClarification(payment_id=payment_id, fields=additional_data)
        except ValidationError as exc:
            raise MonetixInvalidRequest.from_validation_error(
                exc, payment_id=payment_id if isinstance(payment_id, str) else None
            ) from None
        body = {
            "general": {"project_id": self._config.project_id, "payment_id": clar.payment_id},
            "additional_data": dict(clar.fields),
        }
        answer = await self._post("clarification", self._config.clarification_path, clar.payment_id, body)
        return self._ack(answer, clar.payment_id, "clarification")

    async def clarify_fields(self, payment_id: str, fields: Mapping[str, Any]) -> MonetixAck:
        """Answer an ``awaiting clarification`` callback: ``fields`` mirrors its clarification_fields,
        e.g. ``{"account": {"number": "01712345678"}}`` (§3.5: the keys mirror request objects)."""
        problems = clarification_problems(fields)
        try:
            _check_payment_id(payment_id, "general.payment_id")
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise MonetixInvalidRequest(problems, payment_id=payment_id if isinstance(payment_id, str) else None)
        body = {"general": {"project_id": self._config.project_id, "payment_id": payment_id}, **fields}
        answer = await self._post("clarification", self._config.clarification_path, payment_id, body)
        return self._ack(answer, payment_id, "clarification")

    async def status(self, payment_id: str) -> MonetixStatus:
        """Ask Monetix where the payment stands (§3.4). Monetix asks for at least 10 s after the sale;
        that pacing is the caller's (a workflow timer), not this client's.

        Raises :class:`MonetixPaymentNotFound` for code 3061, :class:`MonetixBadSignature` when a signed
        answer does not verify. An unsigned answer is accepted with ``signature_verified=False``.
        """
        try:
            _check_payment_id(payment_id, "general.payment_id")
        except ValueError as exc:
            raise MonetixInvalidRequest([str(exc)]) from None
        body = {"general": {"project_id": self._config.project_id, "payment_id": payment_id}}
        answer = await self._post("status", self._config.status_path, payment_id, body)
        http_status, data, _ = answer

        verified = False
        if extract_signature(data) is not None:
            if not verify(data, self._config.secret_key.get_secret_value()):
                raise MonetixBadSignature(payment_id=payment_id, operation="status")
            verified = True
        if _has_code(data, CODE_TRANSACTION_NOT_FOUND):
            raise MonetixPaymentNotFound(payment_id, _message_for(data, CODE_TRANSACTION_NOT_FOUND))
        if http_status != 200 or data.get("status") == "error":
            raise self._rejected(answer, payment_id, "status")
        try:
            snapshot = MonetixStatus.from_body(data, signature_verified=verified)
        except (ValueError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            raise MonetixResultUnknown(payment_id=payment_id, operation="status", reason=reason) from None
        if snapshot.payment_id != payment_id:
            raise MonetixResultUnknown(
                payment_id=payment_id,
                operation="status",
                reason=f"the answer describes another payment ({snapshot.payment_id})",
            )
        return snapshot

    # -- plumbing --------------------------------------------------------------------------------

    async def _post(
        self, operation: str, path: str, payment_id: str, body: dict[str, Any]
    ) -> _Answer:
        """Sign and POST; return the HTTP status and parsed JSON object of a 2xx or 4xx answer.

        Everything that leaves the outcome open becomes MonetixResultUnknown here (§3.3).
        """
        signed = sign_request(body, self._config.secret_key.get_secret_value())
        url = self._config.base_url.rstrip("/") + path

        def unknown(reason: str) -> MonetixResultUnknown:
            return MonetixResultUnknown(payment_id=payment_id, operation=operation, reason=reason)

        try:
            resp = await self._http.post(
                url,
                json=signed,
                headers={"Accept": "application/json"},
                timeout=self._config.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise unknown(f"no answer within {self._config.timeout_seconds:g} s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            # Dropped or refused connections: we cannot tell whether the body reached Monetix.
            raise unknown(f"connection failed: {type(exc).__name__}") from None
        log.debug("monetix %s payment_id=%s -> HTTP %s", operation, payment_id, resp.status_code)

        # 408/429 mean "not now" rather than "no"; 5xx may have happened after the work was done.
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise unknown(f"HTTP {resp.status_code} from Monetix")
        try:
            data = loads(resp.content)
        except ValueError:
            data = None
        if not isinstance(data, Mapping):
            if 400 <= resp.status_code < 500:
                hint = (
                    "is this server's IP allow-listed at Monetix (§1)?" if resp.status_code == 403 else ""
                )
                raise MonetixRequestRejected(
                    payment_id=payment_id,
                    operation=operation,
                    http_status=resp.status_code,
                    code=None,
                    message=f"HTTP {resp.status_code} without a JSON body",
                    hint=hint,
                )
            raise unknown(f"HTTP {resp.status_code} with a body that is not a JSON object ({len(resp.content)} bytes)")
        if not (200 <= resp.status_code < 300 or 400 <= resp.status_code < 500):
            raise unknown(f"unexpected HTTP {resp.status_code}")
        return _Answer(resp.status_code, data, signed["general"]["signature"])

    def _ack(self, answer: _Answer, payment_id: str, operation: str) -> MonetixAck:
        http_status, data, sent_signature = answer
        if http_status == 200 and data.get("status") == "success":
            echoed = _text(data.get("payment_id"))
            if echoed is not None and echoed != payment_id:
                raise MonetixResultUnknown(
                    payment_id=payment_id,
                    operation=operation,
                    reason=f"the acknowledgement names another payment ({echoed})",
                )
            return MonetixAck(request_id=_text(data.get("request_id")), payment_id=payment_id)
        if http_status >= 400 or data.get("status") == "error" or data.get("errors"):
            raise self._rejected(answer, payment_id, operation)
        raise MonetixResultUnknown(
            payment_id=payment_id,
            operation=operation,
            reason=f"HTTP {http_status} with status {_text(data.get('status'))!r} instead of 'success'",
        )

    def _rejected(self, answer: _Answer, payment_id: str, operation: str) -> MonetixRequestRejected:
        http_status, data, sent_signature = answer
        code = _text(data.get("code"))
        details = [d.model_dump(exclude_none=True) for d in _error_details(data.get("errors"))]
        if code is None and details:
            code = details[0].get("code")
        message = _text(data.get("message")) or (details[0].get("message") if details else None) or ""

        def scrub(text: str) -> str:
            # Belt and braces: a platform message that echoes our key or signature must not reach logs
            # or workflow history.
            for secret in (self._config.secret_key.get_secret_value(), sent_signature):
                if secret:
                    text = text.replace(secret, "***")
            return text

        details = [{k: scrub(v) for k, v in d.items()} for d in details]
        if operation == "sale" and _has_code(data, CODE_PAYMENT_ID_EXISTS):
            return MonetixDuplicatePayment(
                payment_id=payment_id,
                operation=operation,
                http_status=http_status,
                code=CODE_PAYMENT_ID_EXISTS,
                message=scrub(message),
                errors=details,
                hint="an earlier sale with this payment_id was registered (perhaps its answer was lost); "
                "resolve with the status request, do not treat this as a decline",
            )
        hint = {
            "3261": "check the secret key configured for this project_id",
            "3262": "the request was not signed; this is a bug in the client, please report it",
            "2442": "check MonetixGateConfig.project_id",
            "2541": "bKash may not be enabled for this project, or sale_path is wrong; ask Monetix",
        }.get(code or "", "")
        return MonetixRequestRejected(
            payment_id=payment_id,
            operation=operation,
            http_status=http_status,
            code=code,
            message=scrub(message),
            errors=details,
            hint=hint,
        )


def _has_code(data: Mapping[str, Any], code: str) -> bool:
    if _text(data.get("code")) == code:
        return True
    return any(d.code == code for d in _error_details(data.get("errors")))


def _message_for(data: Mapping[str, Any], code: str) -> str:
    for d in _error_details(data.get("errors")):
        if d.code == code and d.message:
            return d.message
    return _text(data.get("message")) or "Transaction not found"


def clarification_problems(fields: Any) -> list[str]:
    """What is wrong with an answer to ``clarification_fields`` (nothing: an empty list). Shared by
    the Gate client and merchant code, so that a typo is refused before a workflow commits to it."""
    if not isinstance(fields, Mapping) or not fields:
        return ["the clarification must carry at least one requested field"]
    problems = []
    for key in fields:
        if key in ("general", "signature") or not isinstance(key, str) or not key:
            problems.append(f"clarification field {key!r} is not allowed")
    account = fields.get("account")
    if "account" in fields and not isinstance(account, Mapping):
        # §3.5: the keys mirror request objects, so the account is an object, as in the sale.
        problems.append(f"clarification field 'account' must be an object like "
                        f"{{'number': '01712345678'}}, got {type(account).__name__}")
    elif account is not None:
        # For bKash the account Monetix asks about is the customer's wallet number; an object
        # without it (or with null) would be refused by Monetix after the workflow sent its answer.
        try:
            if _check_account_number(account.get("number"), "account.number") is None:
                raise ValueError("account.number is missing: send the customer's bKash account number, "
                                 "digits only, at most 12, e.g. '01712345678'")
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def _revalidate(model: type[BaseModel], value: Any, payment_id: Any) -> Any:
    """Validate again at the door: ``model_construct`` or a plain dict must not slip past the rules."""
    try:
        if isinstance(value, model):
            return model.model_validate(value.model_dump())
        return model.model_validate(value)
    except ValidationError as exc:
        raise MonetixInvalidRequest.from_validation_error(
            exc, payment_id=payment_id if isinstance(payment_id, str) else None
        ) from None


# ---------------------------------------------------------------------------------- Payment Page


def _payment_page_params(config: MonetixPaymentPageConfig, params: PaymentPageParams) -> dict[str, Any]:
    p = _revalidate(PaymentPageParams, params, getattr(params, "payment_id", None))
    out: dict[str, Any] = {
        "project_id": config.project_id,
        "payment_id": p.payment_id,
        "customer_id": p.customer_id,
        "customer_first_name": p.first_name,
        "customer_last_name": p.last_name,
        "customer_email": p.email,
    }
    if p.account_number is not None:
        out["customer_account_number"] = p.account_number
    out["payment_currency"] = p.currency
    out["payment_amount"] = p.amount
    if p.description is not None:
        out["payment_description"] = p.description
    out["force_payment_method"] = BKASH_PAYMENT_METHOD
    if p.merchant_callback_url is not None:
        out["merchant_callback_url"] = p.merchant_callback_url
    return out


def epay_widget_params(config: MonetixPaymentPageConfig, params: PaymentPageParams) -> dict[str, Any]:
    """The signed ``configObj`` for ``EPayWidget.run(...)`` (seed, Payment Page example; §5.2)."""
    out = _payment_page_params(config, params)
    out["signature"] = sign(out, config.secret_key.get_secret_value())
    return out


def build_payment_page_url(config: MonetixPaymentPageConfig, params: PaymentPageParams) -> str:
    """``{pp}/payment?{params}&signature={sig}``, signed over the raw values (§5.2, vector P4).

    Every value is a str or an int, so the query text and the signed text agree (§5.2 pitfall: a
    Python ``True`` would be urlencoded as "True" but signed as "1").
    """
    out = _payment_page_params(config, params)
    sig = sign(out, config.secret_key.get_secret_value())
    return f"{config.base_url.rstrip('/')}/payment?{urlencode(out)}&signature={quote_plus(sig)}"
