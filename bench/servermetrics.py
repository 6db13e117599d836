"""Where the dev server spends its time: its own Prometheus metrics (``--metrics-port``), read
before and after a phase. ``persistence_latency`` is the time each SQLite operation took, by
operation; summed over a phase and divided by the payments, it says what the server's database work
costs a payment."""

from __future__ import annotations

import re
from collections import defaultdict

import httpx

_LINE = re.compile(r'^(persistence_latency)_(sum|count)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$')
_OPERATION = re.compile(r'operation="([^"]+)"')


async def persistence(http: httpx.AsyncClient, url: str) -> dict[str, list[float]]:
    """{operation: [seconds, calls]} summed over every label set, from one scrape."""
    text = (await http.get(url, timeout=10)).text
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        op = _OPERATION.search(m["labels"])
        if op:
            out[op.group(1)][0 if m.group(2) == "sum" else 1] += float(m["value"])
    return dict(out)


def per_payment(before: dict, after: dict, payments: int, top: int = 8) -> dict:
    """The ``top`` operations by time: ms and calls per payment."""
    rows = []
    for op, (seconds, calls) in after.items():
        s0, c0 = before.get(op, (0.0, 0.0))
        if calls - c0 > 0:
            rows.append((op, (seconds - s0) * 1000 / payments, (calls - c0) / payments))
    rows.sort(key=lambda r: -r[1])
    total = sum(r[1] for r in rows)
    return {"total_ms": total, "calls": sum(r[2] for r in rows),
            "top": [{"operation": op, "ms": ms, "calls": calls} for op, ms, calls in rows[:top]]}
