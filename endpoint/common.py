"""What both halves of the endpoint share: the log, how a sender-controlled value is logged, and the
refusal log (requests refused are counted and logged in aggregate, not one warning each)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from endpoint.metrics import METRICS  # noqa: E402

log = logging.getLogger("endpoint")

# A line per kind per interval: under attack an operator reads one line a minute, not a warning per
# forged request (which would also let an attacker fill the disk at the price of a POST).
REFUSAL_LOG_INTERVAL = 60.0


def _reason(err: Exception) -> str:
    cause = getattr(err, "cause", None)
    return str(getattr(cause, "message", None) or cause or err)


def _short(value: object, limit: int = 80) -> str:
    """A sender-controlled value as it may appear in a log line: repr'd (no line breaks), bounded."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class RefusalLog:
    """Counts refused requests by kind ("monetix callbacks", "bkash returns", "requests") and reason
    (a fixed phrase of our own, never sender text), and logs one line per kind per interval:

        refused 1234 monetix callbacks in the last 60 s: bad signature 1200, too large 34

    The line is written by the first refusal after the interval, by the app's periodic flush
    (endpoint/app.py), and at shutdown. Thread-safe: refusals may be counted from worker threads.
    """

    def __init__(self, interval: float = REFUSAL_LOG_INTERVAL, *, logger: logging.Logger = log,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._logger = logger
        self._clock = clock
        self._lock = threading.Lock()
        self._window: dict[str, Counter[str]] = {}
        self._since = clock()
        self.totals: dict[str, Counter[str]] = {}  # since start, for tests and an operator's shell

    def refused(self, kind: str, reason: str) -> None:
        with self._lock:
            self._window.setdefault(kind, Counter())[reason] += 1
            self.totals.setdefault(kind, Counter())[reason] += 1
        self.flush_if_due()

    def flush_if_due(self) -> list[str]:
        if self._clock() - self._since < self.interval:
            return []
        return self.flush()

    def flush(self) -> list[str]:
        """Log (and return) one line per kind refused since the last flush; nothing if none was."""
        with self._lock:
            window, self._window = self._window, {}
            elapsed, self._since = self._clock() - self._since, self._clock()
        lines = []
        for kind, reasons in sorted(window.items()):
            detail = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
            lines.append(f"refused {sum(reasons.values())} {kind} in the last {elapsed:.0f} s: "
                         f"{detail}")
        for line in lines:
            self._logger.warning(line)
        return lines

    async def flush_periodically(self) -> None:
        """Until cancelled: write the due lines even when no new refusal comes to trigger them."""
        try:
            while True:
                await asyncio.sleep(max(self.interval / 4, 0.05))
                self.flush_if_due()
        finally:
            self.flush()


# The endpoint's one refusal log: every route counts into it.
REFUSALS = RefusalLog()


def refused(kind: str, reason: str) -> None:
    """Count one refused request of ``kind`` (plural noun: "bkash returns") for ``reason`` (a fixed
    phrase, never a value from the request) in the aggregate log, instead of a warning per request."""
    REFUSALS.refused(kind, reason)
    METRICS.count(kind, "refused", reason)
