"""Monetix (ECOMMPAY platform) signatures: HMAC-SHA512 over a flattened ``path:value`` string.

One implementation shared by the Gate client, the merchant callback endpoint and the Monetix sandbox,
so that all three agree byte for byte. The algorithm is reference §2.1; the edge cases are §2.2;
the only real ambiguity (ordering of numeric path segments ≥ 10) is §2.3.

Pure standard library (plus an optional pydantic ``SecretStr`` for the key): no I/O, no Temporal.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "Order",
    "RawNumber",
    "extract_signature",
    "loads",
    "sign",
    "sign_request",
    "signing_string",
    "verify",
]

Order = Literal["byte", "natural"]

# §2.1: `frame_mode` is a Payment Page display switch that every SDK leaves out of the signature.
_IGNORED_KEY = "frame_mode"
# §2.1 "Callback / signed response": the SDKs remove every `signature` key, recursively.
_SIGNATURE_KEY = "signature"


class RawNumber(str):
    """A JSON number that is not a plain integer, kept as the exact text it arrived as.

    §2.2 "Floats": the SDKs render floats differently (Go truncates, Python prints ``1.0``, PHP ``1``),
    so the only safe way to verify a signed body is to sign each number exactly as it was written.
    ``100.0`` and ``100`` therefore sign differently, as they must. ``.value`` gives the exact Decimal.
    """

    __slots__ = ()

    @property
    def value(self) -> Decimal:
        return Decimal(str(self))

    def __repr__(self) -> str:
        return f"RawNumber({str.__repr__(self)})"


def _parse_int(text: str) -> int | RawNumber:
    number = int(text)
    # `-0` (or anything int() would re-render differently) must keep its original text (§2.2).
    return number if str(number) == text else RawNumber(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not valid JSON and cannot be signed (reference §2.2)")


# No Monetix body nests more than a few levels; the bound keeps the recursive signer (and every SDK's)
# far from Python's recursion limit whatever a hostile sender nests.
MAX_DEPTH = 64
# A lone UTF-16 surrogate (an unpaired "\\ud800" escape) decodes to a str that has no UTF-8 form, so it
# can be neither signed nor verified; PHP's json_decode refuses it too (JSON_ERROR_UTF16).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(text: str | bytes) -> Any:
    """Parse JSON so that every number signs exactly as written (§2.2, §7 "never sign re-serialised JSON").

    Integers stay ``int`` (Python ints are exact, so ``1111111111111111`` survives); every other number
    becomes a :class:`RawNumber` carrying its original text. ``\\uXXXX`` escapes are decoded, which is
    what §2.1 "Unicode" requires.

    Anything that is not signable JSON raises ``ValueError`` and nothing else: invalid UTF-8 or JSON,
    NaN/Infinity, integers over Python's 4300-digit limit, nesting deeper than ``MAX_DEPTH`` and lone
    surrogates. Whatever it returns can be passed to :func:`verify` without an exception.
    """
    try:
        data = json.loads(text, parse_float=RawNumber, parse_int=_parse_int, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels cannot be signed") from None
    _check_signable(data)
    return data


def _check_signable(data: Any) -> None:
    # Iterative, so that checking the depth cannot itself hit the recursion limit.
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels cannot be signed")
            for key, item in value.items():
                if _LONE_SURROGATE.search(key):
                    raise ValueError("JSON text with a lone UTF-16 surrogate escape cannot be signed")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels cannot be signed")
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and _LONE_SURROGATE.search(value):
            raise ValueError("JSON text with a lone UTF-16 surrogate escape cannot be signed")


def _render(value: Any, path: str) -> str:
    # bool before int: in Python True is an int, and §2.1 signs it as "1", not "True".
    if value is True:
        return "1"
    if value is False:
        return "0"
    if value is None:
        return ""  # §2.2: null signs as an empty value, the line is kept
    if isinstance(value, str):
        return str(value)  # verbatim: no escaping of ';' or ':', no trimming (§2.1); RawNumber included
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        # What the Python SDK does (§2.2 "Floats"). Avoid floats in data you sign; parse with loads().
        return repr(value)
    raise TypeError(
        f"cannot sign {path!r}: a {type(value).__name__} is not a JSON value; "
        "pass str, int, bool, None, dict or list (reference §2.1)"
    )


def _walk(obj: Mapping[Any, Any] | Sequence[Any], prefix: str) -> Iterator[tuple[str, str]]:
    items: Iterator[tuple[str, Any]]
    if isinstance(obj, Mapping):
        items = ((str(k), v) for k, v in obj.items())
    else:
        # §2.1: an array is an object keyed by index, the index becomes a path segment.
        items = ((str(i), v) for i, v in enumerate(obj))
    for key, value in items:
        if key == _IGNORED_KEY or key == _SIGNATURE_KEY:
            continue
        segment = key.replace(":", "::")  # §2.2, PE-702: a colon inside a key is doubled
        path = segment if not prefix else f"{prefix}:{segment}"
        if isinstance(value, Mapping) or (isinstance(value, (list, tuple))):
            # An empty object or array yields nothing at all, not even `key:` (§2.2, Go PP-6173).
            yield from _walk(value, path)
        else:
            yield path, f"{path}:{_render(value, path)}"


_DIGITS = re.compile(r"(\d+)")


def _natural_key(path: str) -> list[tuple[str, int, str]]:
    """Sort key emulating PHP ``ksort(..., SORT_NATURAL)`` over the whole path (§2.3).

    Digit runs compare as numbers; every other run compares as text. A digit run sorts where the
    character '0' would, so ``e:10`` follows ``e:9`` while ``e:-`` still precedes ``e:0`` as in strnatcmp.
    """
    key: list[tuple[str, int, str]] = []
    for i, run in enumerate(_DIGITS.split(path)):
        if not run:
            continue
        if i % 2:  # odd indices are the captured digit runs
            key.append(("0", int(run), run))
        else:
            key.append((run[0], -1, run))
    return key


def signing_string(data: Mapping[str, Any], *, order: Order = "byte") -> str:
    """The exact text that gets HMAC'ed: sorted ``path:value`` lines joined with ';' (§2.1).

    ``order="byte"`` is the Python/Go/Java SDK order (code-point order of the path, which equals UTF-8
    byte order); ``order="natural"`` is the PHP/JS order. They differ only for arrays of 11+ items (§2.3).
    Every ``signature`` and ``frame_mode`` key is left out, at every level.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"signed data must be a JSON object (a Mapping), got {type(data).__name__}")
    lines = list(_walk(data, ""))
    if order == "byte":
        lines.sort(key=lambda line: line[0])
    elif order == "natural":
        lines.sort(key=lambda line: _natural_key(line[0]))
    else:
        raise ValueError(f"order must be 'byte' or 'natural', got {order!r}")
    return ";".join(text for _, text in lines)


def _key_bytes(secret: Any) -> bytes:
    # Accept a pydantic SecretStr without importing pydantic here. Never echo the value in an error.
    if hasattr(secret, "get_secret_value"):
        secret = secret.get_secret_value()
    if not isinstance(secret, str):
        raise TypeError(f"the Monetix secret key must be a str, got {type(secret).__name__}")
    return secret.encode("utf-8")


def _hmac_b64(text: str, key: bytes) -> str:
    # §2.1: standard Base64 with '=' padding, not URL-safe, not hex.
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha512).digest()).decode("ascii")


def sign(data: Mapping[str, Any], secret: str, *, order: Order = "byte") -> str:
    """HMAC-SHA512 of :func:`signing_string` keyed with the project's secret, Base64 (§2.1)."""
    return _hmac_b64(signing_string(data, order=order), _key_bytes(secret))


def sign_request(body: dict[str, Any], secret: str) -> dict[str, Any]:
    """Return a copy of a Gate request body with ``general.signature`` set (§2.1 "Gate request").

    The body is signed without any signature (a ``general.signature: ""`` placeholder would otherwise
    be signed as ``general:signature:``, the R1 mistake), and the input is not modified.
    """
    general = body.get("general")
    if not isinstance(general, Mapping):
        raise ValueError(
            "a Gate request body needs a 'general' object with project_id and payment_id before it can be "
            "signed (reference §3.1)"
        )
    signed = copy.deepcopy(body)
    signed["general"] = {k: v for k, v in signed["general"].items() if k != _SIGNATURE_KEY}
    signed["general"][_SIGNATURE_KEY] = sign(signed, secret)
    return signed


def extract_signature(data: Mapping[str, Any]) -> str | None:
    """The signature a callback or signed response carries: root ``signature``, else ``general.signature``.

    §4.1: payment callbacks carry it at the root; token and recurring callbacks in ``general``.
    """
    sig = data.get(_SIGNATURE_KEY)
    if sig is None:
        general = data.get("general")
        if isinstance(general, Mapping):
            sig = general.get(_SIGNATURE_KEY)
    return sig if isinstance(sig, str) and sig else None


def verify(data: Mapping[str, Any], secret: str) -> bool:
    """True when ``data`` carries a signature that matches its content under ``secret``.

    Both orderings are tried (§2.3: the server's ordering of 11+ item arrays is unknown, and both are
    keyed HMACs, so accepting either costs no security). Comparison is constant-time. A body without a
    signature, or that is not a JSON object, is simply not verified.
    """
    if not isinstance(data, Mapping):
        return False
    received = extract_signature(data)
    if received is None:
        return False
    if not received.isascii():
        return False  # Base64 is ASCII; anything else (even text with no UTF-8 form) is simply wrong
    key = _key_bytes(secret)
    received_bytes = received.encode("ascii")
    byte_string = signing_string(data, order="byte")
    natural_string = signing_string(data, order="natural")
    ok = hmac.compare_digest(_hmac_b64(byte_string, key).encode("ascii"), received_bytes)
    if natural_string != byte_string:
        ok = hmac.compare_digest(_hmac_b64(natural_string, key).encode("ascii"), received_bytes) or ok
    return ok
