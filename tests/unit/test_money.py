import pytest

from contracts.money import format_bdt, parse_bdt


@pytest.mark.parametrize("poisha,text", [(50000, "500.00"), (1, "0.01"), (12345, "123.45"), (0, "0.00")])
def test_poisha_render_as_two_decimal_bdt_string(poisha, text):
    assert format_bdt(poisha) == text
    assert parse_bdt(text) == poisha


@pytest.mark.parametrize("text,poisha", [("12", 1200), ("500.5", 50050), ("100.00", 10000)])
def test_bkash_amount_strings_parse_without_float(text, poisha):
    assert parse_bdt(text) == poisha


@pytest.mark.parametrize("bad", ["1.234", "-5", "1e3", "abc", "", "01.00", "1,000.00"])
def test_malformed_amount_strings_are_rejected(bad):
    with pytest.raises(ValueError):
        parse_bdt(bad)


@pytest.mark.parametrize("bad", [1.5, "100", True])
def test_format_refuses_anything_but_integer_poisha(bad):
    with pytest.raises(TypeError):
        format_bdt(bad)
