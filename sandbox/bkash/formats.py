"""Wire formats: money strings, identifiers and timestamps as bKash writes them (reference §4.3)."""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import string
from datetime import datetime, timedelta, timezone

# Money is integer poisha inside the sandbox; "500.00" is parsed digit by digit, never via float.
_AMOUNT = re.compile(r"^(\d{1,12})(?:\.(\d{1,2}))?$")

DHAKA = timezone(timedelta(hours=6))
_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits


def json_text(value: object) -> str | None:
    """A JSON string or number as the text bKash keeps and echoes, else None.

    Strings are kept as sent. A JSON number is taken as its text (500 -> "500", 500.5 -> "500.5"),
    the way a Java backend binding JSON into String fields coerces scalars [INF]; bKash answers
    every such field as a string (§4.2). Booleans, null, arrays and objects are no text.
    Sources for accepting numbers, the create amount in particular:
    - pybkash 0.4.2 (PyPI; docs/detailed_usage.md "amount=1000", README "amount=1000") sends
      ``"amount": amount`` unformatted, i.e. a JSON number, in every create_payment;
    - a Laravel app (stored file ids 59183656677 and 59096526786: ``$amount = 100`` posted as
      ``'amount' => $amount`` through Http::post, i.e. the JSON number 100) pasted the sandbox's
      2025-12-22 execute answer for that payment: ``"amount": "100"``, Completed;
    - the only [OBS] numeric amount refused is 0 (2021 logs: ``"amount": 0`` -> 2006
      "Invalid amount."), which the value check below refuses as well.
    No source shows a positive JSON number refused, so numbers are accepted.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # json.loads takes NaN/Infinity (and 1e400 as inf); no amount either
    return repr(value) if isinstance(value, float) else str(value)


def parse_amount(value: object) -> tuple[int, str] | None:
    """(poisha, the amount's text) for a positive amount with at most two decimals, else None.

    The text is what bKash echoes: "12" stays "12" (§4.2), the JSON number 500 becomes "500".
    """
    text = json_text(value)
    m = _AMOUNT.match(text) if text is not None else None
    if m is None:
        return None
    whole, fraction = m.group(1), (m.group(2) or "").ljust(2, "0")
    poisha = int(whole) * 100 + int(fraction)
    return (poisha, text) if poisha > 0 else None


def format_poisha(poisha: int) -> str:
    return f"{poisha // 100}.{poisha % 100:02d}"


def bkash_time(epoch_seconds: float) -> str:
    """`2021-11-19T17:56:55:529 GMT+0600`: a colon before the milliseconds, Dhaka time (§4.3)."""
    t = datetime.fromtimestamp(epoch_seconds, DHAKA)
    return f"{t:%Y-%m-%dT%H:%M:%S}:{t.microsecond // 1000:03d} GMT+0600"


def random_alnum(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def new_payment_id(mode: str, epoch_seconds: float) -> str:
    # TR + mode + 5-7 random alnum (2024-26 shape) + 13-digit epoch-ms (§4.3).
    return f"TR{mode}{random_alnum(7)}{int(epoch_seconds * 1000):013d}"


def new_trx_id() -> str:
    return random_alnum(10, _UPPER_ALNUM)


def new_signature() -> str:
    return random_alnum(10)


def new_page_hash(epoch_seconds: float) -> str:
    return f"{secrets.token_urlsafe(36)}{int(epoch_seconds * 1000):013d}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_id_token(claims: dict) -> str:
    """A JWT-looking Cognito id_token (§3.1). The sandbox never decodes it: tokens are looked up,
    so a client that tries to verify or parse it gets no guarantee from the claims."""
    header = {"kid": random_alnum(16), "alg": "RS256"}
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                     _b64(secrets.token_bytes(256))])


def new_refresh_token() -> str:
    """A JWE-looking Cognito refresh token (§3.1): five dot-separated parts."""
    header = {"cty": "JWT", "enc": "A256GCM", "alg": "RSA-OAEP"}
    return ".".join([_b64(json.dumps(header).encode()), _b64(secrets.token_bytes(256)),
                     _b64(secrets.token_bytes(12)), _b64(secrets.token_bytes(1200)),
                     _b64(secrets.token_bytes(16))])
