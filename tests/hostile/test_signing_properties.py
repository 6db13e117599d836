"""Properties of the Monetix signing module (providers/monetix_signing.py, reference §2) over arbitrary
JSON-like data: a signature made by ``sign`` always verifies, survives a JSON round trip, does not
depend on key order, breaks when any leaf changes; ``loads`` refuses hostile bytes only with a
ValueError, and whatever it returns can be verified without an exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from providers.monetix_signing import RawNumber, loads, sign, signing_string, verify
from tests.hostile.strategies import hostile_bodies, json_objects, keys, leaves

secrets = st.text(min_size=1, max_size=40)


def _leaf_paths(value, path=()):
    """Every (path, leaf) in a JSON-like value; empty containers have no leaf (§2.2)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in ("signature", "frame_mode"):
                yield from _leaf_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaf_paths(v, (*path, i))
    else:
        yield path, value


def _replaced(value, path, new):
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], tuple(rest), new)}
    copy = list(value)
    copy[head] = _replaced(value[head], tuple(rest), new)
    return copy


def _wire_text(leaf) -> str:
    # §2.1: how a leaf is written into the signed string; values with the same text are the same
    # to the signature by design (1, "1" and true; null and "").
    if leaf is True:
        return "1"
    if leaf is False:
        return "0"
    if leaf is None:
        return ""
    if isinstance(leaf, float):
        return repr(leaf)
    return str(leaf)


@settings(max_examples=120)
@given(data=json_objects(), secret=secrets)
def test_a_signature_made_by_sign_always_verifies(data, secret):
    assert verify({**data, "signature": sign(data, secret)}, secret)
    # The PHP/JS SDKs sort arrays of 11+ items naturally (§2.3); either order is accepted.
    assert verify({**data, "signature": sign(data, secret, order="natural")}, secret)


@settings(max_examples=60)
@given(data=json_objects(), secret=secrets, other=secrets)
def test_a_signature_never_verifies_under_another_key(data, secret, other):
    assume(secret != other)
    assert not verify({**data, "signature": sign(data, secret)}, other)


@settings(max_examples=100)
@given(data=json_objects(), secret=secrets, ascii_only=st.booleans())
def test_a_signed_body_survives_a_json_round_trip(data, secret, ascii_only):
    # What the endpoint receives: the sender's JSON text, parsed with loads (numbers as written).
    signed = {**data, "signature": sign(data, secret)}
    wire = json.dumps(signed, ensure_ascii=ascii_only)
    assert verify(loads(wire), secret)
    assert verify(loads(wire.encode("utf-8")), secret)


@settings(max_examples=60)
@given(data=json_objects(), secret=secrets, seed=st.randoms(use_true_random=False))
def test_the_signature_does_not_depend_on_key_order(data, secret, seed):
    def shuffled(value):
        if isinstance(value, dict):
            items = list(value.items())
            seed.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    assert sign(shuffled(data), secret) == sign(data, secret)


@settings(max_examples=150)
@given(data=json_objects(), secret=secrets, pick=st.data())
def test_tampering_with_any_leaf_breaks_the_signature(data, secret, pick):
    paths = list(_leaf_paths(data))
    assume(paths)
    path, old = pick.draw(st.sampled_from(paths), label="leaf")
    new = pick.draw(leaves.filter(lambda v: _wire_text(v) != _wire_text(old)), label="new value")
    signed = {**data, "signature": sign(data, secret)}
    assert not verify(_replaced(signed, path, new), secret)


@settings(max_examples=60)
@given(data=json_objects(), secret=secrets, key=keys, value=leaves)
def test_adding_a_field_breaks_the_signature(data, secret, key, value):
    assume(key not in data)
    signed = {**data, "signature": sign(data, secret)}
    assert not verify({**signed, key: value}, secret)


@settings(max_examples=50)
@given(data=json_objects(), secret=secrets, pick=st.data())
def test_a_signature_moved_to_another_body_does_not_verify(data, secret, pick):
    other = pick.draw(json_objects(8), label="other body")
    assume(signing_string(other) != signing_string(data))
    assert not verify({**other, "signature": sign(data, secret)}, secret)


@settings(max_examples=400)
@given(raw=hostile_bodies)
def test_loads_refuses_hostile_bytes_only_with_value_error(raw):
    try:
        parsed = loads(raw)
    except ValueError:
        return
    # Whatever loads accepts can be signed and verified without an exception (the endpoint and
    # the Monetix sandbox call verify on it before anything else).
    if isinstance(parsed, dict):
        signing_string(parsed)
        assert verify({**parsed, "signature": "AAAA"}, "key") is False
        assert isinstance(verify(parsed, "key"), bool)


@settings(max_examples=200)
@given(text=st.text(max_size=60))
def test_loads_refuses_any_text_only_with_value_error(text):
    try:
        parsed = loads(text)
    except ValueError:
        return
    if isinstance(parsed, dict):
        assert isinstance(verify(parsed, "key"), bool)


@pytest.mark.parametrize("depth", [10, 900, 5_000, 100_000])
def test_deeply_nested_json_is_a_value_error_or_verifiable(depth):
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        try:
            parsed = loads(text)
        except ValueError:
            continue
        assert isinstance(verify({"x": parsed, "signature": "AAAA"}, "key"), bool)


@pytest.mark.parametrize("text", ['{"a": "\\ud800"}', '{"\\udfff": 1}', '{"signature": "\\ud83d"}',
                                  '["\\udc00\\ud800"]'])
def test_lone_surrogates_cannot_be_signed_and_are_refused_by_loads(text):
    # PHP's json_decode refuses them too (JSON_ERROR_UTF16); nothing could sign them as UTF-8.
    with pytest.raises(ValueError, match="surrogate"):
        loads(text)


def test_a_surrogate_pair_is_one_character_and_signs():
    data = loads('{"a": "\\ud83d\\ude42"}')
    assert data == {"a": "🙂"}
    assert verify({**data, "signature": sign(data, "k")}, "k")


@given(sig=st.text(st.characters(categories=["Cs", "Lo", "So"]), min_size=1, max_size=20))
@settings(max_examples=100)
def test_any_received_signature_text_is_refused_without_an_exception(sig):
    assert verify({"a": 1, "signature": sig}, "key") is False
    assert verify({"a": 1, "general": {"signature": sig}}, "key") is False


@settings(max_examples=100)
@given(number=st.decimals(allow_nan=False, allow_infinity=False), secret=secrets)
def test_numbers_verify_as_written_and_not_as_reformatted(number, secret):
    text = str(number)
    assume(text.lstrip("-").replace(".", "", 1).replace("E", "", 1).replace("+", "").replace(
        "-", "").isdigit())
    try:
        json.loads(text)
    except ValueError:
        assume(False)
    data = {"amount": RawNumber(text)}
    wire = f'{{"amount": {text}, "signature": "{sign(data, secret)}"}}'
    assert verify(loads(wire), secret)
