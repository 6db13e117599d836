"""The endpoint's own metrics: callbacks and returns by kind and verdict (accepted, duplicate,
refused for a fixed reason of ours, unavailable), in Prometheus' text format, served on a separate
loopback listener (never on the public port: README "Metrics").

Labels are fixed phrases of ours — never a sender's text, a payment id or an address — so the
series stay few however hostile the traffic."""

from __future__ import annotations

import threading
from collections import Counter

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from contracts.metrics import ENDPOINT_REQUESTS


class EndpointMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def count(self, kind: str, verdict: str, reason: str = "") -> None:
        with self._lock:
            self._counts[(kind, verdict, reason)] += 1

    def value(self, kind: str, verdict: str, reason: str | None = None) -> int:
        with self._lock:
            return sum(n for (k, v, r), n in self._counts.items()
                       if k == kind and v == verdict and (reason is None or r == reason))

    def render(self) -> str:
        lines = [f"# HELP {ENDPOINT_REQUESTS}_total callbacks and returns at the merchant endpoint, by "
                 "kind and verdict", f"# TYPE {ENDPOINT_REQUESTS}_total counter"]
        with self._lock:
            items = sorted(self._counts.items())
        for (kind, verdict, reason), n in items:
            labels = f'kind="{_esc(kind)}",verdict="{_esc(verdict)}"'
            if reason:
                labels += f',reason="{_esc(reason)}"'
            lines.append(f"{ENDPOINT_REQUESTS}_total{{{labels}}} {n}")
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


# One per process, like the refusal log (endpoint/common.py).
METRICS = EndpointMetrics()


def metrics_app(metrics: EndpointMetrics = METRICS) -> Starlette:
    async def scrape(_: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/metrics", scrape)])
