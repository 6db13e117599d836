"""Bad input gets a clear error naming the field and the rule, before anything is sent."""

import pytest
from pydantic import ValidationError

from contracts.bkash import BkashPaymentRequest

BASE = {"invoice_number": "INV-1", "amount_poisha": 50000,
        "callback_base_url": "https://shop.example"}


def problems(**overrides) -> str:
    with pytest.raises(ValidationError) as info:
        BkashPaymentRequest.model_validate({**BASE, **overrides},
                                           context={"max_amount_poisha": 100_000_00})
    return str(info.value)


def test_a_well_formed_request_builds_the_workflow_id_and_callback_url():
    req = BkashPaymentRequest.model_validate(BASE)
    assert req.workflow_id == "bkash-INV-1"
    assert req.callback_url == "https://shop.example/bkash/return/bkash-INV-1"


@pytest.mark.parametrize("amount,rule", [(0, "must be positive"), (-500, "must be positive"),
                                         (100_000_01, "over the configured maximum")])
def test_amount_rules(amount, rule):
    text = problems(amount_poisha=amount)
    assert "amount_poisha" in text and rule in text


@pytest.mark.parametrize("amount", [500.5, "50000", 1.0, True])
def test_fractional_or_non_integer_poisha_is_refused(amount):
    assert "amount_poisha" in problems(amount_poisha=amount)


@pytest.mark.parametrize("invoice,rule", [("", "must not be empty"), ("   ", "must not be empty"),
                                          ("x" * 256, "at most 255"),
                                          ("INV<1>", "must not contain < >"),
                                          ("A&B", "must not contain &")])
def test_invoice_rules(invoice, rule):
    text = problems(invoice_number=invoice)
    assert "invoice_number" in text and rule in text


@pytest.mark.parametrize("url", ["shop.example", "ftp://shop.example", "https://",
                                 "https://shop.example/cb?x=1", "javascript:alert(1)"])
def test_malformed_callback_url_is_refused(url):
    assert "callback_base_url" in problems(callback_base_url=url)


def test_a_255_character_invoice_is_accepted():
    BkashPaymentRequest.model_validate({**BASE, "invoice_number": "x" * 255})
