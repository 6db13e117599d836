"""Monetix (ECOMMPAY platform) signatures: HMAC-SHA512 over a flattened ``path:value`` string.

One implementation shared by the Gate client, the merchant callback endpoint and the Monetix sandbox,
so that all three agree byte for byte. The algorithm is reference §2.1; the edge cases are §2.2;
the only real ambiguity, the order of the lines (the SDKs sort by path, naturally, or by whole line),
is §2.3. Verification facing the internet is bounded (``Bounds``, ``CALLBACK_BOUNDS``): see
``authenticate``.

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
from dataclasses import dataclass, replace
from decimal import Decimal
from operator import itemgetter
from typing import Any, Literal

__all__ = [
    "CALLBACK_BOUNDS",
    "Bounds",
    "Meter",
    "Order",
    "RawNumber",
    "Refused",
    "authenticate",
    "extract_signature",
    "loads",
    "plausible_signature",
    "sign",
    "sign_request",
    "signing_string",
    "verify",
]

Order = Literal["byte", "natural", "line"]
# verify() tries every order some SDK uses (§2.3); identical orderings are compared once.
_VERIFY_ORDERS: tuple[Order, ...] = ("byte", "natural", "line")

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
    # Iterative, so that checking the depth cannot itself hit the recursion limit; only containers
    # are stacked, so the check holds no more than one entry per container in memory.
    if isinstance(data, str) and _LONE_SURROGATE.search(data):
        raise ValueError("JSON text with a lone UTF-16 surrogate escape cannot be signed")
    stack: list[tuple[Any, int]] = [(data, 0)] if isinstance(data, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels cannot be signed")
        if isinstance(value, dict):
            for key in value:
                if _LONE_SURROGATE.search(key):
                    raise ValueError("JSON text with a lone UTF-16 surrogate escape cannot be signed")
            items = value.values()
        else:
            items = value
        for item in items:
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
            elif isinstance(item, str) and _LONE_SURROGATE.search(item):
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


# -- bounds: what a verifier facing the internet refuses before any signing work ----------------

@dataclass(frozen=True)
class Bounds:
    """Limits on the shape of a body to verify, checked while it is flattened, before any HMAC.

    A signing string repeats every key's full path on every leaf below it, so its size is not the
    body's: one long key above a long array made a 50 KB body into hundreds of MB of lines (issue 9).
    Counts are in characters of the flattened ``path:value`` lines (``signed_chars`` includes the ';').
    """

    depth: int  # path segments of the deepest leaf
    leaves: int  # path:value lines
    key_chars: int  # one key, after ':' doubling
    value_chars: int  # one rendered leaf value
    signed_chars: int  # the whole signing string

    def for_body(self, body_bytes: int) -> Bounds:
        """These bounds, with the signing string held to about twice the body: real callbacks
        flatten to 0.3-1.2 times their JSON size (every vector of §2.4); only prefix repetition
        exceeds that."""
        return replace(self, signed_chars=min(self.signed_chars, 2 * body_bytes + 1024))


# What a Monetix callback needs, with wide margins (§4.1 field inventory, the §2.4 callback vectors,
# sandbox/monetix/callbacks.py): the deepest real leaf has 3-5 segments (`operation:provider:id`,
# `errors:0:description:1:description1`), a callback 10-40 leaves, the longest key 25 characters
# (`is_new_attempts_available`), the longest value ~100 (`operation.request_id`, tokens; a 3-D Secure
# `acs.pa_req` a few KB). 16 segments, 1000 leaves, 128-character keys and 16 KiB values are 3-25
# times that; the signing-string cap keeps the work linear in the body whatever the shape.
CALLBACK_BOUNDS = Bounds(depth=16, leaves=1000, key_chars=128, value_chars=16 * 1024,
                         signed_chars=2 * 64 * 1024 + 1024)


class Refused(ValueError):
    """Why a body was not verified. ``reason`` is one of the fixed phrases below (safe to count and
    log: never sender text); ``str()`` adds the bound that was crossed."""

    MISSING_SIGNATURE = "missing signature"
    MALFORMED_SIGNATURE = "malformed signature"
    NOT_AN_OBJECT = "not a JSON object"
    TOO_DEEP = "nested too deep"
    TOO_MANY_LEAVES = "too many fields"
    KEY_TOO_LONG = "key too long"
    VALUE_TOO_LONG = "value too long"
    TOO_LARGE_TO_SIGN = "signing string too large"
    BAD_SIGNATURE = "bad signature"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}{f' ({detail})' if detail else ''}")
        self.reason = reason


@dataclass
class Meter:
    """The work one signing or verification did, for tests and the bench (never timed)."""

    nodes: int = 0  # keys and array items visited
    leaves: int = 0  # path:value lines built
    line_chars: int = 0  # characters of those lines
    hashed_bytes: int = 0  # bytes fed to HMAC, over every order tried
    macs: int = 0  # HMACs computed


# -- flattening ---------------------------------------------------------------------------------

def _items(obj: Mapping[Any, Any] | Sequence[Any]) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        return ((str(k), v) for k, v in obj.items())
    # §2.1: an array is an object keyed by index, the index becomes a path segment.
    return ((str(i), v) for i, v in enumerate(obj))


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping) or isinstance(value, (list, tuple))


def _lines(data: Mapping[str, Any], bounds: Bounds | None = None,
           meter: Meter | None = None) -> list[tuple[str, str]]:
    """Every ``(path, "path:value")`` line, depth first in the body's own order (ties between equal
    paths therefore sort as they always did). Iterative, so no nesting reaches the recursion limit;
    with ``bounds``, refused as soon as a bound is crossed, before the line that would cross it."""
    lines: list[tuple[str, str]] = []
    total = 0
    nodes = 0
    stack: list[tuple[Iterator[tuple[str, Any]], str, int]] = [(_items(data), "", 0)]
    try:
        while stack:
            items, prefix, depth = stack[-1]
            for key, value in items:
                nodes += 1
                if key == _IGNORED_KEY or key == _SIGNATURE_KEY:
                    continue
                segment = key.replace(":", "::")  # §2.2, PE-702: a colon inside a key is doubled
                if bounds is not None:
                    if len(segment) > bounds.key_chars:
                        raise Refused(Refused.KEY_TOO_LONG, f"over {bounds.key_chars} characters")
                    if depth + 1 > bounds.depth:
                        raise Refused(Refused.TOO_DEEP, f"over {bounds.depth} levels")
                path = segment if not prefix else f"{prefix}:{segment}"
                if _is_container(value):
                    # An empty object or array yields nothing, not even `key:` (§2.2, Go PP-6173).
                    stack.append((_items(value), path, depth + 1))
                    break
                text = _render(value, path)
                if bounds is not None:
                    if len(text) > bounds.value_chars:
                        raise Refused(Refused.VALUE_TOO_LONG, f"over {bounds.value_chars} characters")
                    if len(lines) >= bounds.leaves:
                        raise Refused(Refused.TOO_MANY_LEAVES, f"over {bounds.leaves}")
                    total += len(path) + len(text) + 2  # ':' and ';'
                    if total > bounds.signed_chars:
                        raise Refused(Refused.TOO_LARGE_TO_SIGN,
                                      f"over {bounds.signed_chars} characters")
                lines.append((path, f"{path}:{text}"))
            else:
                stack.pop()
    finally:
        if meter is not None:  # refused or not: what was visited and built
            meter.nodes += nodes
            meter.leaves += len(lines)
            meter.line_chars += sum(len(text) for _, text in lines)
    return lines


_DIGITS = re.compile(r"(\d+)")


def _natural_key(path: str) -> list[tuple[str, tuple[int, str], str]]:
    """Sort key emulating PHP ``ksort(..., SORT_NATURAL)`` over the whole path (§2.3).

    Digit runs compare as numbers; every other run compares as text. A digit run sorts where the
    character '0' would, so ``e:10`` follows ``e:9`` while ``e:-`` still precedes ``e:0`` as in strnatcmp.
    A number is compared as (digit count, digits) without leading zeros: the order of int(), without
    converting a run of thousands of digits (which int() refuses past 4300).
    """
    key: list[tuple[str, tuple[int, str], str]] = []
    for i, run in enumerate(_DIGITS.split(path)):
        if not run:
            continue
        if i % 2:  # odd indices are the captured digit runs
            digits = run.lstrip("0")
            key.append(("0", (len(digits), digits), run))
        else:
            key.append((run[0], (-1, ""), run))  # never compared with a digit run's: run[0] differs
    return key


def _ordered(lines: list[tuple[str, str]], order: str) -> list[tuple[str, str]]:
    # Two lines may share a path (an empty key's child "0" and a key "0"): the whole line breaks
    # the tie, so the signature never depends on the order of the keys in the JSON object.
    if order == "byte":
        # Python/Go path order: code-point order of the path, which equals UTF-8 byte order.
        return sorted(lines, key=itemgetter(0, 1))
    if order == "natural":
        return sorted(lines, key=lambda line: (_natural_key(line[0]), line[1]))  # PHP / JS
    if order == "line":
        # Java, Go and .NET SDKs sort the whole "path:value" strings (§2.3): `id2:2` before `id:1`.
        # (Java compares UTF-16 units; that differs from code points only between characters above
        # U+FFFF and U+E000-U+FFFF, which no callback key holds.)
        return sorted(lines, key=itemgetter(1))
    raise ValueError(f"order must be 'byte', 'natural' or 'line', got {order!r}")


def signing_string(data: Mapping[str, Any], *, order: Order = "byte") -> str:
    """The exact text that gets HMAC'ed: sorted ``path:value`` lines joined with ';' (§2.1).

    ``order="byte"`` is the Python SDK order (code-point order of the path, which equals UTF-8 byte
    order); ``order="natural"`` is the PHP/JS order; ``order="line"`` sorts whole lines, as the Go
    and Java SDKs do. They differ only for arrays of 11+ items or keys that prefix one another (§2.3).
    Every ``signature`` and ``frame_mode`` key is left out, at every level.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"signed data must be a JSON object (a Mapping), got {type(data).__name__}")
    return ";".join(text for _, text in _ordered(_lines(data), order))


def _key_bytes(secret: Any) -> bytes:
    # Accept a pydantic SecretStr without importing pydantic here. Never echo the value in an error.
    if hasattr(secret, "get_secret_value"):
        secret = secret.get_secret_value()
    if not isinstance(secret, str):
        raise TypeError(f"the Monetix secret key must be a str, got {type(secret).__name__}")
    return secret.encode("utf-8")




def _mac(lines: list[tuple[str, str]], key: bytes, meter: Meter | None = None) -> str:
    """HMAC-SHA512 of the lines joined with ';', fed line by line: the joined string is never built.
    §2.1: standard Base64 with '=' padding, not URL-safe, not hex."""
    mac = hmac.new(key, digestmod=hashlib.sha512)
    fed = 0
    for i, (_, text) in enumerate(lines):
        chunk = text.encode("utf-8")
        if i:
            mac.update(b";")
        mac.update(chunk)
        fed += len(chunk) + (1 if i else 0)
    if meter is not None:
        meter.hashed_bytes += fed
        meter.macs += 1
    return base64.b64encode(mac.digest()).decode("ascii")


def sign(data: Mapping[str, Any], secret: str, *, order: Order = "byte") -> str:
    """HMAC-SHA512 of :func:`signing_string` keyed with the project's secret, Base64 (§2.1)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"signed data must be a JSON object (a Mapping), got {type(data).__name__}")
    return _mac(_ordered(_lines(data), order), _key_bytes(secret))


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


# Base64 of exactly 64 bytes (an HMAC-SHA512), as §2.1 writes it: 85 characters, then one whose
# low four bits are zero, then "==". Anything else can never match, so it costs no signing work.
_SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{85}[AQgw]==")


def plausible_signature(signature: Any) -> bool:
    """True when ``signature`` could be a Monetix signature at all (standard Base64 of 64 bytes)."""
    return isinstance(signature, str) and _SIGNATURE_SHAPE.fullmatch(signature) is not None


def authenticate(data: Mapping[str, Any], secret: str, *, bounds: Bounds | None = None,
                 meter: Meter | None = None) -> None:
    """Return if ``data`` carries a signature that matches its content under ``secret``; otherwise
    raise :class:`Refused` saying why.

    A missing or malformed signature is refused before anything is flattened; with ``bounds`` (the
    endpoint passes :data:`CALLBACK_BOUNDS`) a body of the wrong shape is refused while flattening,
    before any HMAC. Then the lines are sorted in each order an SDK uses (§2.3: byte, natural, whole
    line; the server's is unknown and all are keyed HMACs over the same lines, so accepting any costs
    no security) and each distinct ordering is HMAC'ed incrementally and compared in constant time.
    """
    if not isinstance(data, Mapping):
        raise Refused(Refused.NOT_AN_OBJECT)
    received = extract_signature(data)
    if received is None:
        raise Refused(Refused.MISSING_SIGNATURE)
    if not plausible_signature(received):
        raise Refused(Refused.MALFORMED_SIGNATURE, "not Base64 of a 64-byte HMAC-SHA512")
    key = _key_bytes(secret)
    lines = _lines(data, bounds, meter)
    received_bytes = received.encode("ascii")
    tried: list[list[tuple[str, str]]] = []
    ok = False
    for order in _VERIFY_ORDERS:
        ordered = _ordered(lines, order)
        if ordered in tried:
            continue  # the same lines in the same order: the same HMAC
        tried.append(ordered)
        # Every distinct order is compared, matched or not: the time taken does not tell which.
        ok = hmac.compare_digest(_mac(ordered, key, meter).encode("ascii"), received_bytes) or ok
    if not ok:
        raise Refused(Refused.BAD_SIGNATURE)


def verify(data: Mapping[str, Any], secret: str, *, bounds: Bounds | None = None,
           meter: Meter | None = None) -> bool:
    """True when ``data`` carries a signature that matches its content under ``secret``
    (:func:`authenticate`, which says why not). A body without a signature, with one that cannot be
    a signature, outside ``bounds``, or that is not a JSON object, is simply not verified."""
    try:
        authenticate(data, secret, bounds=bounds, meter=meter)
    except Refused:
        return False
    return True
