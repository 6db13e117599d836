"""Identifiers and timestamps as the ECOMMPAY platform writes them (reference §3.3, §4.1)."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from datetime import datetime, timezone

from sandbox.bkash.formats import new_trx_id  # bKash's trxID shape: 10 upper-case alphanumerics

__all__ = ["amount_text", "monetix_time", "new_trx_id", "OperationIds"]


def monetix_time(epoch_seconds: float) -> str:
    """`2024-12-07T19:08:45+0000`: UTC with a colon-less offset (seed callbacks, §4.1)."""
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def amount_text(minor: int) -> str:
    """Poisha as BDT for display_data: whole taka as "500" (§4.2 X2), otherwise "500.50"."""
    taka, poisha = divmod(minor, 100)
    return str(taka) if poisha == 0 else f"{taka}.{poisha:02d}"


class OperationIds:
    """Operation ids are 16-digit integers (§4.1 example 5028800010128225); request ids are
    `sha1-sha1-8digits` (§3.3), the 8 digits here being the operation's sequence."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self._salt = secrets.token_hex(8)

    def next(self) -> tuple[int, str]:
        n = next(self._seq)
        operation_id = 5_028_800_000_000_000 + n
        a = hashlib.sha1(f"{self._salt}:a:{n}".encode()).hexdigest()
        b = hashlib.sha1(f"{self._salt}:b:{n}".encode()).hexdigest()
        return operation_id, f"{a}-{b}-{n % 100_000_000:08d}"

    def request_id(self) -> str:
        return self.next()[1]
