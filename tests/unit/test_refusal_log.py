"""Refused requests are logged in aggregate (issue 9 §3): one line per kind per interval with the
count of each reason, not a warning per request, so an operator can read the log under attack."""

from __future__ import annotations

import asyncio
import logging

from endpoint.common import REFUSALS, RefusalLog, refused


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_refusals_is_one_line_per_kind_per_interval(caplog):
    caplog.set_level(logging.INFO, logger="test.refusals")
    clock = Clock()
    refusals = RefusalLog(60, logger=logging.getLogger("test.refusals"), clock=clock)
    for n in range(1234):
        clock.now += 0.01  # 12 s of attack: within the interval
        refusals.refused("monetix callbacks", "bad signature" if n < 1200 else "too large")
    for _ in range(3):
        refusals.refused("bkash returns", "foreign paymentID")
    assert caplog.records == []  # nothing per request

    clock.now += 60
    refusals.refused("monetix callbacks", "bad signature")  # the first one after the interval
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused 3 bkash returns in the last 72 s: foreign paymentID 3",
        "refused 1235 monetix callbacks in the last 72 s: bad signature 1201, too large 34",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert refusals.flush() == []  # counted once; the window starts again
    assert refusals.totals["monetix callbacks"]["bad signature"] == 1201


async def test_the_periodic_flush_writes_the_last_window_without_a_new_refusal(caplog):
    caplog.set_level(logging.INFO, logger="test.refusals")
    refusals = RefusalLog(0.2, logger=logging.getLogger("test.refusals"))
    refusals.refused("requests", "query string too long")
    flusher = asyncio.create_task(refusals.flush_periodically())
    while not caplog.records:
        await asyncio.sleep(0.05)
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("refused 1 requests in the last") and line.endswith("query string too long 1")


def test_refused_counts_into_the_endpoints_one_log():
    before = REFUSALS.totals.get("bkash returns", {}).get("signature mismatch", 0)
    refused("bkash returns", "signature mismatch")
    assert REFUSALS.totals["bkash returns"]["signature mismatch"] == before + 1
