"""Money is integer poisha (1 BDT = 100 poisha) everywhere inside the project, and every amount
field says so in its name (``amount_poisha``, ``paid_poisha``).

bKash wants a decimal string ("500.00") and Monetix an integer in minor units; conversion happens
only at the wire, and float never appears. This is the one formatter: messages, summaries, the
bKash wire and the CLI all use it.
"""

from __future__ import annotations

import re

_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)(?:\.([0-9]{1,2}))?$")


def format_bdt(poisha: int) -> str:
    """12345 -> "123.45" (the bKash wire format, and how amounts are shown)."""
    if isinstance(poisha, bool) or not isinstance(poisha, int):
        raise TypeError(f"amount must be integer poisha, got {type(poisha).__name__}")
    sign = "-" if poisha < 0 else ""
    taka, paisa = divmod(abs(poisha), 100)
    return f"{sign}{taka}.{paisa:02d}"


def parse_bdt(text: str) -> int:
    """"500", "500.5", "500.50" -> 50050 poisha. Rejects anything that is not a plain decimal."""
    match = _DECIMAL.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a BDT amount with at most two decimals")
    taka, paisa = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(taka) * 100 + int(paisa)
