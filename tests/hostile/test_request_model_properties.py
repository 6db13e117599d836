"""Every request model, fed arbitrary and hostile field values, either builds a request that keeps
every documented rule or refuses with a pydantic ValidationError naming the field: never another
exception, never a request that breaks a rule (README "Bad input gets a clear error ...", the seed's
Monetix bKash rules in providers/monetix.py)."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from providers.monetix import MonetixClarification, MonetixCustomer, MonetixSaleRequest, PaymentPageParams
from tests.hostile.strategies import huge_text, nasty_text
from contracts.bkash import BkashPaymentRequest
from contracts.monetix import (
    TRANSACTION_ID,
    ClarificationAnswer,
    MonetixPurchaseRequest,
    PaymentPagePurchaseRequest,
    TransactionIdSubmission,
)

junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), nasty_text,
                 huge_text, st.binary(max_size=8), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                 st.decimals(allow_nan=True), st.just(object()))


def _url(scheme, host, port, path, query, fragment) -> str:
    return f"{scheme}{host}{port}{path}{query}{fragment}"


urls = st.builds(
    _url,
    st.sampled_from(["https://", "http://", "ftp://", "", "javascript:", "HTTP://", "https:/"]),
    st.sampled_from(["shop.example", "127.0.0.1", "[::1]", "[::1", "", "shop example", "shöp.example",
                     "a\x00b", "a\tb", "user:pw@shop.example", "%00", "xn--bcher-kva.example"]),
    st.sampled_from(["", ":8080", ":0", ":99999", ":abc", ":"]),
    st.sampled_from(["", "/", "/pay", "/a b", "/\u202e", "/a\nb"]),
    st.sampled_from(["", "?x=1", "?"]),
    st.sampled_from(["", "#frag", "#"]),
) | st.text(max_size=30)

invoices = (st.text(max_size=300) | st.from_regex(r"INV-[A-Za-z0-9]{1,20}", fullmatch=True)
            | st.sampled_from(["INV\x7f1", "INV\x851", "INV\u20281", "INV\u202e1", " INV ", "INV-১২৩"]))
amounts = st.integers(min_value=-10, max_value=10**13) | st.sampled_from([1.0, 500.5, "50000", True, 10**30])
durations = st.timedeltas(min_value=timedelta(days=-1), max_value=timedelta(days=2)) | st.sampled_from(
    [0, 5, "PT5M", "5 minutes", -1, 1e308])


def _control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _well_formed_http_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
            and not parts.fragment and not any(c.isspace() or _control(c) for c in url))


def _choose(valid, field_junk=junk):
    return st.one_of(valid, valid, field_junk)


# ----------------------------------------------------------------------------- bKash payment request

@settings(max_examples=400)
@given(fields=st.fixed_dictionaries({
    "invoice_number": _choose(invoices), "amount_poisha": _choose(amounts),
    "callback_base_url": _choose(urls)},
    optional={"payer_reference": _choose(st.text(max_size=30) | st.from_regex(r"[A-Za-z0-9_.-]{1,20}",
                                                                              fullmatch=True)),
              "approval_window": _choose(durations), "hold_deadline": _choose(durations),
              "provider_timeout": _choose(durations),
              "max_create_attempts": _choose(st.integers(-5, 20))}),
       limit=st.none() | st.integers(min_value=1, max_value=10**9))
def test_bkash_payment_request_is_valid_or_refused_naming_the_field(fields, limit):
    context = {"max_amount_poisha": limit} if limit is not None else None
    try:
        req = BkashPaymentRequest.model_validate(fields, context=context)
    except ValidationError as exc:
        named = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        assert named <= set(fields), exc
        assert named, exc
        return
    inv = req.invoice_number
    assert inv.strip() and len(inv) <= 255 and not set(inv) & set("<>&")
    assert not any(unicodedata.category(c).startswith("C") for c in inv)
    assert type(req.amount_poisha) is int and req.amount_poisha > 0
    assert limit is None or req.amount_poisha <= limit
    assert _well_formed_http_url(req.callback_base_url)
    assert req.payer_reference is None or re.fullmatch(r"[A-Za-z0-9_\-.]{1,255}", req.payer_reference)
    assert min(req.approval_window, req.hold_deadline, req.provider_timeout) > timedelta(0)
    assert 1 <= req.max_create_attempts <= 10
    # What the workflow builds from it never fails.
    assert req.workflow_id == f"bkash-{inv}"
    assert req.callback_url.startswith(req.callback_base_url + "/bkash/return/")


# Found by the property above: DEL/C1 controls and URLs with spaces or a non-numeric port used to
# pass the models' own rules.
@pytest.mark.parametrize("invoice", ["INV\x7f1", "INV\x851"])
def test_bkash_invoice_with_del_or_c1_control_is_refused(invoice):
    with pytest.raises(ValidationError, match="invoice_number"):
        BkashPaymentRequest(invoice_number=invoice, amount_poisha=100, callback_base_url="https://a.example")


@pytest.mark.parametrize("url", ["https://shop example", "https://shop.example:abc", "https://a\x00b"])
def test_malformed_callback_base_url_is_refused_by_the_workflow_models(url):
    with pytest.raises(ValidationError, match="callback_base_url"):
        BkashPaymentRequest(invoice_number="INV-1", amount_poisha=100, callback_base_url=url)
    with pytest.raises(ValidationError, match="callback_base_url"):
        MonetixPurchaseRequest(sale=VALID_SALE, callback_base_url=url)


# ---------------------------------------------------------------------------- Monetix sale / page

VALID_CUSTOMER = {"id": "cust-1", "ip_address": "203.0.113.7", "first_name": "Rahim",
                  "last_name": "Uddin", "email": "rahim@example.com"}
VALID_SALE = {"payment_id": "P-1", "amount": 100000, "customer": VALID_CUSTOMER,
              "account_number": "01712345678"}

emails = st.sampled_from(["rahim@example.com", "a@b.c", "a@b", "@b.c", "a b@c.d", "a@b.c\n", "a\x00@b.c",
                          "a@b.c.", "ক@খ.গ", "x" * 250 + "@b.co"]) | st.emails() | st.text(max_size=20)
ips = (st.ip_addresses().map(str) | st.sampled_from(["1.2.3", "256.1.1.1", "::1", "fe80::1%eth0", " 1.2.3.4",
                                                       "1.2.3.4\n"]) | st.integers(0, 2**32) | st.booleans())
accounts = (st.none() | st.from_regex(r"[0-9]{1,14}", fullmatch=True)
            | st.sampled_from(["0171-234", "01712345678\n", "১৭১২৩৪৫৬৭৮", "", " 0171", "0" * 13]))
monetix_amounts = (st.integers(min_value=-2000, max_value=10**12).map(lambda n: n * 1000)
                   | st.integers(-10**6, 10**6) | st.sampled_from([100000.0, "100000", True, 10**40]))
payment_ids = st.text(max_size=300) | st.sampled_from(["P-1", "", " ", "P\n1", "P\x001", "x" * 256, "\u202eP"])
names = st.text(max_size=20) | st.sampled_from(["Rahim", "", "  ", "R\x00", "রহিম", "R\u2028"])
customers = st.fixed_dictionaries(
    {"id": _choose(names), "ip_address": _choose(ips), "first_name": _choose(names),
     "last_name": _choose(names), "email": _choose(emails)},
    optional={"extra": junk})


def _check_customer_fields(ip_address: str, email: str, texts: list[str]) -> None:
    assert isinstance(ip_address, str) and str(ipaddress.ip_address(ip_address)) == ip_address
    assert isinstance(email, str) and email.isprintable() and len(email) <= 254
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s.]+", email)
    for text in texts:
        assert isinstance(text, str) and text.strip() and text.isprintable()


def _check_sale_rules(payment_id, amount, currency, account_number) -> None:
    assert isinstance(payment_id, str) and 1 <= len(payment_id) <= 255 and payment_id.isprintable()
    assert type(amount) is int and amount > 0 and amount % 1000 == 0
    assert currency == "BDT"
    assert account_number is None or re.fullmatch(r"[0-9]{1,12}", account_number)


@settings(max_examples=400)
@given(sale=st.fixed_dictionaries(
    {"payment_id": _choose(payment_ids), "amount": _choose(monetix_amounts), "customer": _choose(customers)},
    optional={"currency": _choose(st.sampled_from(["BDT", "bdt", "USD", ""])),
              "account_number": _choose(accounts), "description": _choose(st.text(max_size=30))}),
       callback_base_url=_choose(urls))
def test_monetix_sale_is_valid_or_refused(sale, callback_base_url):
    try:
        req = MonetixPurchaseRequest(sale=sale, callback_base_url=callback_base_url)
    except ValidationError as exc:
        assert exc.errors(), exc
        return
    s = req.sale
    _check_sale_rules(s.payment_id, s.amount, s.currency, s.account_number)
    c = s.customer
    _check_customer_fields(c.ip_address, c.email, [c.id, c.first_name, c.last_name])
    assert s.description is None or isinstance(s.description, str)
    assert _well_formed_http_url(req.callback_base_url)
    assert req.workflow_id == f"monetix-{s.payment_id}" and req.callback_url.endswith("/monetix/callback")


@settings(max_examples=300)
@given(params=st.fixed_dictionaries(
    {"payment_id": _choose(payment_ids), "amount": _choose(monetix_amounts),
     "customer_id": _choose(names), "first_name": _choose(names), "last_name": _choose(names),
     "email": _choose(emails)},
    optional={"currency": _choose(st.sampled_from(["BDT", "USD"])), "account_number": _choose(accounts),
              "description": _choose(st.text(max_size=30)), "merchant_callback_url": _choose(urls)}),
       callback_base_url=_choose(urls))
def test_payment_page_params_are_valid_or_refused(params, callback_base_url):
    try:
        req = PaymentPagePurchaseRequest(params=params, callback_base_url=callback_base_url)
    except ValidationError as exc:
        assert exc.errors(), exc
        return
    p = req.params
    assert _well_formed_http_url(req.callback_base_url)
    _check_sale_rules(p.payment_id, p.amount, p.currency, p.account_number)
    assert isinstance(p.email, str) and p.email.isprintable()
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s.]+", p.email)
    for text in (p.customer_id, p.first_name, p.last_name):
        assert text.strip() and text.isprintable()
    # The callback URL travels in the signed Payment Page link: Monetix must be able to POST to it.
    assert p.merchant_callback_url is None or _well_formed_http_url(p.merchant_callback_url.split("?")[0])


@settings(max_examples=200)
@given(value=junk | ips | emails | accounts)
def test_customer_fields_never_accept_a_non_string(value):
    for field in ("id", "ip_address", "first_name", "last_name", "email"):
        try:
            customer = MonetixCustomer(**{**VALID_CUSTOMER, field: value})
        except ValidationError:
            continue
        assert isinstance(value, str), f"{field} accepted {value!r}"
        _check_customer_fields(customer.ip_address, customer.email,
                               [customer.id, customer.first_name, customer.last_name])


@pytest.mark.parametrize("field,value", [
    ("email", "rahim@example.com\n"), ("email", "ra\x00him@example.com"), ("email", "rahim@exam\x7fple.com"),
    ("ip_address", 3405803783), ("ip_address", True)])
def test_customer_email_and_ip_must_be_clean_text(field, value):
    with pytest.raises(ValidationError, match=f"customer.{field}"):
        MonetixCustomer(**{**VALID_CUSTOMER, field: value})


@pytest.mark.parametrize("account", ["01712345678\n", "0171234567\n"])
def test_account_number_with_a_trailing_newline_is_refused(account):
    with pytest.raises(ValidationError, match="account.number"):
        MonetixSaleRequest(**{**VALID_SALE, "account_number": account})
    with pytest.raises(ValidationError, match="customer_account_number"):
        PaymentPageParams(payment_id="P-1", amount=100000, customer_id="c", first_name="a", last_name="b",
                          email="a@b.co", account_number=account)


@pytest.mark.parametrize("url", ["http://a b.example/cb", "https://shop.example/cb\n", "http://x\x00y/cb",
                                 "https://shop.example:port/cb", "http:///cb"])
def test_payment_page_callback_url_must_be_a_well_formed_url(url):
    with pytest.raises(ValidationError, match="merchant_callback_url"):
        PaymentPageParams(payment_id="P-1", amount=100000, customer_id="c", first_name="a", last_name="b",
                          email="a@b.co", merchant_callback_url=url)


# ------------------------------------------------------------- transaction ID and clarification

@settings(max_examples=200)
@given(value=junk | st.from_regex(r"[A-Za-z0-9]{1,25}", fullmatch=True) | st.text(max_size=30))
def test_transaction_id_submission_accepts_only_text(value):
    try:
        sub = TransactionIdSubmission(transaction_id=value)
    except ValidationError:
        assert not isinstance(value, str)
        return
    # pydantic's lax mode reads UTF-8 bytes as text; nothing else that is not text gets in.
    assert isinstance(value, (str, bytes))
    value = value.decode() if isinstance(value, bytes) else value
    assert sub.transaction_id == value
    # The rule the workflow applies (6-20 ASCII letters or digits, spaces around ignored).
    if TRANSACTION_ID.match(value.strip()):
        assert re.fullmatch(r"[A-Za-z0-9]{6,20}", value.strip())


@settings(max_examples=200)
@given(fields=junk | st.dictionaries(st.text(max_size=8), junk, max_size=3)
       | st.dictionaries(st.text(max_size=8), st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
                         max_size=3))
def test_clarification_answer_needs_at_least_one_named_field(fields):
    try:
        answer = ClarificationAnswer(fields=fields)
    except ValidationError:
        assert not (isinstance(fields, dict) and fields)
        return
    assert isinstance(answer.fields, dict) and answer.fields


@settings(max_examples=200)
@given(payment_id=junk | payment_ids, fields=junk | st.dictionaries(st.text(max_size=8), junk, max_size=3))
def test_gate_clarification_is_valid_or_refused(payment_id, fields):
    try:
        clar = MonetixClarification(payment_id=payment_id, fields=fields)
    except ValidationError:
        return
    assert isinstance(clar.payment_id, str) and clar.payment_id.isprintable() and clar.fields
    assert all(isinstance(k, str) and k and isinstance(v, str) and v.strip() for k, v in clar.fields.items())
