"""The one redaction rule of the go-live pack, for headers, JSON bodies, URLs and free text alike.

Older bKash plugins leaked credentials into exactly this kind of log (production.md §2), and the
pack leaves the merchant's hands, so the rule errs on the side of removing: a secret field's value
goes whole (never a prefix or a length), any known secret value is removed wherever it shows up,
and a wallet number keeps only what a reviewer needs to tell the test wallets apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

# Field and header names whose value is a secret, compared case-insensitively (bKash spells headers
# both ways: Authorization / authorization, §2.1).
SECRET_KEYS = frozenset({"app_secret", "password", "id_token", "refresh_token", "authorization"})

# An 11-digit wallet (01XXXXXXXXX), or the 13-digit form with the country code that Search answers
# (§4.3: customerMsisdn "8801..."); not part of a longer digit run (epoch milliseconds, amounts).
_WALLET = re.compile(r"(?<!\d)((?:88)?01\d)(\d{5})(\d{3})(?!\d)")

# Below this length a "secret" is no secret worth scrubbing from free text: replacing every "1"
# would only garble the pack.
_MIN_SECRET_CHARS = 6


def mask_wallets(text: str) -> str:
    """01823074817 → 018*****817, 8801770618575 → 88017*****575."""
    return _WALLET.sub(lambda m: f"{m.group(1)}*****{m.group(3)}", text)


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` (a JSON value, a header mapping, a URL or any text) with every secret removed.

    Mappings: the value of a :data:`SECRET_KEYS` key becomes :data:`REDACTED` whatever it is.
    Strings: every occurrence of a ``secrets`` value becomes :data:`REDACTED`, then wallet numbers
    are masked. Lists and mappings are walked recursively; numbers, booleans and None pass.
    """
    known = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True)
    return _redact(value, known)


def _redact(value: Any, known: list[str]) -> Any:
    if isinstance(value, str):
        for secret in known:  # longest first: a token that contains a shorter secret goes whole
            value = value.replace(secret, REDACTED)
        return mask_wallets(value)
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in SECRET_KEYS else _redact(v, known)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, known) for v in value]
    return value


def secrets_in(value: Any) -> set[str]:
    """The string values of :data:`SECRET_KEYS` fields anywhere in ``value``: what a grant or
    refresh answer hands out, so that the token is also removed where it shows up without its
    name (a URL, a message)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k).lower() in SECRET_KEYS and isinstance(v, str):
                found.add(v)
            else:
                found |= secrets_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= secrets_in(v)
    return found
