"""Monetix verification (issue 9 §1, §5): every SDK's sort order is accepted, signing stays as
documented, a signature that cannot be one costs no signing work, and the callback bounds refuse a
body before any HMAC. The expected signatures here are computed independently of the module (plain
hmac over lines sorted as each SDK sorts them), so the tests do not trust the code they test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from providers.monetix_signing import (
    CALLBACK_BOUNDS,
    Bounds,
    Meter,
    Refused,
    authenticate,
    plausible_signature,
    sign,
    signing_string,
    verify,
)

KEY = "secret"


def _lines(data, prefix=""):
    """§2.1 flattening, written out again for the test: (path, "path:value")."""
    for key, value in (data.items() if isinstance(data, dict) else enumerate(data)):
        key = str(key)
        if key in ("signature", "frame_mode"):
            continue
        path = key.replace(":", "::") if not prefix else f"{prefix}:{key.replace(':', '::')}"
        if isinstance(value, (dict, list)):
            yield from _lines(value, path)
        else:
            text = "1" if value is True else "0" if value is False else "" if value is None else str(value)
            yield path, f"{path}:{text}"


def _natural(path):
    return [int(run) if run.isdigit() else run for run in re.split(r"(\d+)", path) if run]


SDK_ORDERS = {
    # Python SDK: sorted by path.
    "python (path)": lambda lines: sorted(lines, key=lambda line: line[0]),
    # PHP ksort(SORT_NATURAL) / JS: numbers in paths compared as numbers.
    "php (natural)": lambda lines: sorted(lines, key=lambda line: _natural(line[0])),
    # Go sort.Strings / Java Collections.sort over the "path:value" strings themselves.
    "go/java (whole line)": lambda lines: sorted(lines, key=lambda line: line[1]),
}


def sdk_sign(data: dict, sdk: str) -> str:
    text = ";".join(line for _, line in SDK_ORDERS[sdk](list(_lines(data))))
    return base64.b64encode(hmac.new(KEY.encode(), text.encode(), hashlib.sha512).digest()).decode()


# Where the orders part ways: an 11+ item array (e:10 vs e:2) and a key that prefixes another
# (`id:1` vs `id2:2`, ':' sorting after '2'), with values that tell the line order apart.
DIVERGING = {
    "array of 11": {"e": list(range(11))},
    "key prefixing another": {"id": 1, "id2": 2},
    "both, in a callback": {"project_id": 1234, "payment": {"id": "mx-1", "status": "success"},
                            "display_data": [{"type": "add_info", "title": f"t{i}", "data": str(i)}
                                             for i in range(12)],
                            "operation": {"id": 7, "id2": 8, "type": "sale", "status": "success"}},
}


@pytest.mark.parametrize("sdk", SDK_ORDERS)
@pytest.mark.parametrize("name", DIVERGING)
def test_a_callback_signed_in_any_sdks_order_verifies(sdk, name):
    data = DIVERGING[name]
    assert verify({**data, "signature": sdk_sign(data, sdk)}, KEY)


@pytest.mark.parametrize("name", ["key prefixing another", "both, in a callback"])
def test_the_whole_line_order_really_differs_from_the_other_two(name):
    # So the test above proves something for the Go/Java order: it signs other bytes.
    data = DIVERGING[name]
    signatures = {sdk: sdk_sign(data, sdk) for sdk in SDK_ORDERS}
    assert signatures["go/java (whole line)"] not in (signatures["python (path)"],
                                                      signatures["php (natural)"])


def test_signing_stays_the_documented_path_order_and_each_order_can_be_named():
    data = DIVERGING["both, in a callback"]
    assert sign(data, KEY) == sdk_sign(data, "python (path)")
    assert sign(data, KEY, order="natural") == sdk_sign(data, "php (natural)")
    assert sign(data, KEY, order="line") == sdk_sign(data, "go/java (whole line)")
    assert signing_string({"id": 1, "id2": 2}) == "id:1;id2:2"
    assert signing_string({"id": 1, "id2": 2}, order="line") == "id2:2;id:1"


def test_an_order_no_sdk_uses_is_refused():
    data = DIVERGING["both, in a callback"]
    lines = sorted(_lines(data), key=lambda line: line[0], reverse=True)
    text = ";".join(line for _, line in lines)
    reversed_sig = base64.b64encode(hmac.new(KEY.encode(), text.encode(), hashlib.sha512).digest()).decode()
    with pytest.raises(Refused) as refused:
        authenticate({**data, "signature": reversed_sig}, KEY)
    assert refused.value.reason == Refused.BAD_SIGNATURE


@pytest.mark.parametrize("signature,reason", [
    (None, Refused.MISSING_SIGNATURE), ("", Refused.MISSING_SIGNATURE),
    ("A" * 88, Refused.MALFORMED_SIGNATURE),           # no '==' padding: not 64 bytes
    (base64.b64encode(bytes(63)).decode(), Refused.MALFORMED_SIGNATURE),
    (base64.b64encode(bytes(65)).decode(), Refused.MALFORMED_SIGNATURE),
    (base64.b64encode(bytes(64)).hex(), Refused.MALFORMED_SIGNATURE),  # hex, not Base64
    (base64.urlsafe_b64encode(b"\xff" * 64).decode(), Refused.MALFORMED_SIGNATURE),  # '-' '_'
    (base64.b64encode(bytes(64)).decode() + "\n", Refused.MALFORMED_SIGNATURE),
    ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB==",
     Refused.MALFORMED_SIGNATURE),  # 88 characters, but its last bits are not zero: not 64 bytes
])
def test_a_signature_that_cannot_be_one_costs_no_signing_work(signature, reason):
    meter = Meter()
    data = {"payment": {"id": "x"}, "a": [0] * 500, "signature": signature}
    with pytest.raises(Refused) as refused:
        authenticate(data, KEY, bounds=CALLBACK_BOUNDS, meter=meter)
    assert refused.value.reason == reason
    assert meter == Meter()  # nothing flattened, nothing hashed


def test_every_base64_of_64_bytes_is_plausible():
    for fill in range(256):
        assert plausible_signature(base64.b64encode(bytes([fill]) * 64).decode())
    assert plausible_signature(sign({"a": 1}, KEY))


SMALL = Bounds(depth=3, leaves=5, key_chars=8, value_chars=10, signed_chars=120)


@pytest.mark.parametrize("data,reason", [
    ({"a": {"b": {"c": {"d": 1}}}}, Refused.TOO_DEEP),
    ({"a": [1, 2, 3, 4, 5, 6]}, Refused.TOO_MANY_LEAVES),
    ({"k" * 9: 1}, Refused.KEY_TOO_LONG),
    ({"a:b:c:d": 1}, Refused.KEY_TOO_LONG),  # 7 characters, 10 once its colons are doubled (§2.2)
    ({"v": "x" * 11}, Refused.VALUE_TOO_LONG),
    ({"a" * 8: {"b" * 8: ["y" * 10] * 5}}, Refused.TOO_LARGE_TO_SIGN),
])
def test_each_bound_refuses_before_any_hmac(data, reason):
    meter = Meter()
    with pytest.raises(Refused) as refused:
        authenticate({**data, "signature": sign(data, KEY)}, KEY, bounds=SMALL, meter=meter)
    assert refused.value.reason == reason
    assert meter.macs == 0 and meter.hashed_bytes == 0
    assert meter.leaves <= SMALL.leaves and meter.line_chars <= SMALL.signed_chars
    # Without bounds the same body verifies: the bounds, not the signature, refused it.
    assert verify({**data, "signature": sign(data, KEY)}, KEY)


def test_a_body_within_the_bounds_verifies_with_one_hmac_per_distinct_order():
    data = {"e": list(range(11)), "p": "x"}
    meter = Meter()
    authenticate({**data, "signature": sign(data, KEY, order="line")}, KEY, bounds=CALLBACK_BOUNDS,
                 meter=meter)
    assert meter.leaves == 12 and meter.macs == 3
    assert meter.hashed_bytes == 3 * len(signing_string(data).encode())
    plain = Meter()
    authenticate({"a": 1, "signature": sign({"a": 1}, KEY)}, KEY, meter=plain)
    assert plain.macs == 1  # the three orders agree: one HMAC


def test_the_signing_string_is_held_to_about_twice_the_body():
    bounds = CALLBACK_BOUNDS.for_body(1000)
    assert bounds.signed_chars == 3024 and bounds.leaves == CALLBACK_BOUNDS.leaves
    assert CALLBACK_BOUNDS.for_body(10**9).signed_chars == CALLBACK_BOUNDS.signed_chars


def test_a_key_of_thousands_of_digits_is_refused_not_raised():
    # Natural order compares digit runs as numbers; int() refuses more than 4300 digits.
    data = {"9" * 5000: 1, "1" * 4400: 2}
    assert verify({**data, "signature": sign(data, KEY, order="natural")}, KEY)
    assert verify({**data, "signature": sign({"x": 1}, KEY)}, KEY) is False
