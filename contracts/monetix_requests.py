"""What a merchant sends to start a Monetix bKash purchase, and its rules.

The rules are Monetix's (seed 003, "Special considerations" and Tables 1-2; monetix-gate.md §3):
BDT only, integer poisha, a multiple of 10 BDT, the five customer fields strictly required, an
account number of at most 12 digits. They are checked when merchant code builds the request, so
bad input is refused before any money moves; the Gate client checks them again at the wire.

Messages name the field as Monetix's docs do (``payment.amount``, ``customer.email``, or the Payment
Page's ``payment_amount``), which is what a merchant's engineer searches for.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, \
    ValidationInfo, field_validator

from contracts.money import format_bdt

# Seed, "Special considerations": the BDT amount must be whole and a multiple of 10.00 BDT.
MONETIX_BKASH_STEP_POISHA = 1000

# Matched with fullmatch: `$` alone would also accept a trailing newline ("01712345678\n").
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_DIGITS = re.compile(r"[0-9]+")


def check_payment_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string (unique within the Monetix project)")
    if len(value) > 255:
        raise ValueError(f"{name} is {len(value)} characters; Monetix accepts at most 255")
    if not value.isprintable():
        raise ValueError(f"{name} {value!r} contains control characters; use printable characters only")
    # The same characters bKash refuses in an invoice: they break HTML and URLs on the way back.
    bad = sorted(set(value) & set("<>&"))
    if bad:
        raise ValueError(f"{name} {value!r} must not contain {' '.join(bad)}")
    return value


def check_amount(value: Any, name: str) -> int:
    # Strictly int: a float (95.5), a bool or a string ("9550") means the caller's unit is unclear.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{name} must be an integer number of poisha (minor units), e.g. 100000 for 1000.00 BDT; "
            f"got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} {value} ({format_bdt(value)} BDT) must be positive")
    step = MONETIX_BKASH_STEP_POISHA
    if value % step:
        lower = value - value % step
        upper = lower + step
        options = (f"{lower} ({format_bdt(lower)} BDT) or {upper} ({format_bdt(upper)} BDT)"
                   if lower else f"{upper} ({format_bdt(upper)} BDT)")
        raise ValueError(f"{name} {value} ({format_bdt(value)} BDT) is not a multiple of 10 BDT "
                         f"(Monetix bKash rule); send {options}")
    return value


def check_currency(value: Any, name: str) -> str:
    if value != "BDT":
        raise ValueError(f"{name} {value!r} is not supported: Monetix bKash takes BDT only; send 'BDT'")
    return value


def check_account_number(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DIGITS.fullmatch(value) or len(value) > 12:
        raise ValueError(
            f"{name} {value!r} must be the customer's bKash account number, digits only, at most 12 "
            "(Monetix bKash rule), e.g. '01712345678'")
    return value


def check_email(value: Any, name: str) -> str:
    if (not isinstance(value, str) or len(value) > 254 or not value.isprintable()
            or not _EMAIL.fullmatch(value)):
        raise ValueError(f"{name} {value!r} is not a well-formed email address (like name@example.com)")
    return value


def check_ip(value: Any, name: str) -> str:
    try:
        if not isinstance(value, str):
            # ipaddress also takes an int (and so a bool): 5 would become "0.0.0.5", sent by nobody.
            raise TypeError(name)
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise ValueError(f"{name} {value!r} is not an IPv4 or IPv6 address; send the customer's "
                         "device IP, e.g. 198.51.100.47") from None


def _text_rule(what: str) -> Callable[[Any, str], str]:
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be the {what}, a non-empty string")
        if not value.isprintable():
            raise ValueError(f"{name} {value!r} contains control characters")
        return value
    return check


def check_description(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def is_http_url(value: str) -> bool:
    # Monetix must be able to POST to it: no whitespace or control character anywhere (they would be
    # signed verbatim into a Payment Page link), a host, and a port that is a number.
    from urllib.parse import urlsplit
    if not value.isprintable() or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for "host:abc" or a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_callback_url(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_http_url(value):
        raise ValueError(f"{name} {value!r} must be an absolute http(s) URL where Monetix can POST callbacks")
    return value


_CUSTOMER_ID = _text_rule("customer's unique ID in your project")
_FIRST_NAME = _text_rule("customer's first name")
_LAST_NAME = _text_rule("customer's last name")


class _MonetixRequestModel(BaseModel):
    """One validator for every field: ``RULES`` maps a field to its rule, ``WIRE`` to the name
    Monetix's docs give it (used in every message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    RULES: ClassVar[dict[str, Callable[[Any, str], Any]]] = {}
    WIRE: ClassVar[dict[str, str]] = {}

    @field_validator("*", mode="before")
    @classmethod
    def _rule(cls, value: Any, info: ValidationInfo) -> Any:
        rule = cls.RULES.get(info.field_name or "")
        return rule(value, cls.WIRE[info.field_name]) if rule else value


def _amount_field() -> Any:
    # Named amount_poisha inside the project; "amount" is still read, as in histories of purchases
    # started before the rename.
    return Field(validation_alias=AliasChoices("amount_poisha", "amount"))


class MonetixCustomer(_MonetixRequestModel):
    """The Gate ``customer`` object; all five fields are "strictly required" for bKash (seed, Table 2)."""

    RULES: ClassVar = {"id": _CUSTOMER_ID, "ip_address": check_ip, "first_name": _FIRST_NAME,
                       "last_name": _LAST_NAME, "email": check_email}
    WIRE: ClassVar = {k: f"customer.{k}" for k in RULES}

    id: str
    ip_address: str
    first_name: str
    last_name: str
    email: str


class MonetixSaleRequest(_MonetixRequestModel):
    """A bKash purchase through Gate. ``amount_poisha`` is integer poisha: 100000 = 1000.00 BDT."""

    RULES: ClassVar = {"payment_id": check_payment_id, "amount_poisha": check_amount,
                       "currency": check_currency, "account_number": check_account_number,
                       "description": check_description}
    WIRE: ClassVar = {"payment_id": "general.payment_id", "amount_poisha": "payment.amount",
                      "currency": "payment.currency", "account_number": "account.number",
                      "description": "payment.description"}

    payment_id: str
    amount_poisha: int = _amount_field()
    currency: str = "BDT"
    customer: MonetixCustomer
    account_number: str | None = None
    description: str | None = None


class PaymentPageParams(_MonetixRequestModel):
    """A bKash purchase through the Payment Page (seed, Table 1). Same rules as the Gate sale.

    The customer's IP is not a Payment Page parameter: the page sees the browser itself.
    """

    RULES: ClassVar = {"payment_id": check_payment_id, "amount_poisha": check_amount,
                       "currency": check_currency, "customer_id": _CUSTOMER_ID,
                       "first_name": _FIRST_NAME, "last_name": _LAST_NAME, "email": check_email,
                       "account_number": check_account_number, "description": check_description,
                       "merchant_callback_url": check_callback_url}
    WIRE: ClassVar = {"payment_id": "payment_id", "amount_poisha": "payment_amount",
                      "currency": "payment_currency", "customer_id": "customer_id",
                      "first_name": "customer_first_name", "last_name": "customer_last_name",
                      "email": "customer_email", "account_number": "customer_account_number",
                      "description": "payment_description",
                      "merchant_callback_url": "merchant_callback_url"}

    payment_id: str
    amount_poisha: int = _amount_field()
    currency: str = "BDT"
    customer_id: str
    first_name: str
    last_name: str
    email: str
    account_number: str | None = None
    description: str | None = None
    merchant_callback_url: str | None = None


class MonetixClarification(_MonetixRequestModel):
    """The data Monetix asked for, sent as ``additional_data`` (seed: ``transaction_id`` for bKash).

    ``transaction_id`` is not forced here: §3.5 says the platform lists the fields it wants.
    """

    RULES: ClassVar = {"payment_id": check_payment_id}
    WIRE: ClassVar = {"payment_id": "general.payment_id", "fields": "additional_data"}

    payment_id: str
    fields: dict[str, str] = Field(min_length=1)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> dict[str, str]:
        if not isinstance(v, Mapping) or not v:
            raise ValueError("additional_data must name at least one field, e.g. "
                             "{'transaction_id': '<bKash TrxID>'}")
        for key, value in v.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"additional_data key {key!r} must be a non-empty string")
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"additional_data.{key} must be a non-empty string (what the "
                                 "customer got from bKash)")
        return dict(v)


# Names the Monetix docs use for our fields, so that messages speak the merchant's language.
_WIRE_NAMES = {**MonetixCustomer.WIRE, **MonetixSaleRequest.WIRE, "id": "customer.id",
               "customer": "customer", "fields": "additional_data", "amount": "payment.amount",
               "merchant_callback_url": "general.merchant_callback_url"}


def problem_text(err: Mapping[str, Any]) -> str:
    """One pydantic error of these models in merchant words (the field as Monetix names it)."""
    ctx = err.get("ctx") or {}
    if err.get("type") == "value_error" and "error" in ctx:
        # Our rules already wrote the full sentence, field name included.
        return str(ctx["error"])
    loc = [str(p) for p in err.get("loc", ())]
    name = _WIRE_NAMES.get(loc[-1], ".".join(loc)) if loc else "request"
    if err.get("type") == "missing":
        return f"{name} is required"
    if err.get("type") == "extra_forbidden":
        return f"{name} is not a field Monetix knows here; remove it"
    return f"{name}: {err.get('msg', 'invalid')}"


def problems_of(exc: ValidationError) -> list[str]:
    return [problem_text(err) for err in exc.errors()]


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
            if check_account_number(account.get("number"), "account.number") is None:
                raise ValueError("account.number is missing: send the customer's bKash account "
                                 "number, digits only, at most 12, e.g. '01712345678'")
        except ValueError as exc:
            problems.append(str(exc))
    return problems
