"""Every HTTP exchange the project's bKash client makes, as it went over the wire.

Recorded with httpx event hooks on the client's own ``AsyncClient``, so the pack shows what
``providers/bkash.py`` really sends (headers and body as serialized), not a reconstruction. One
exchange can be *lost* on purpose: bKash answers, the wrapper below reads that answer for the log
and hands the client a dropped connection instead. That is how the pack shows Query Payment used
the only way bKash allows it: after an execute whose answer never arrived (bkash-api.md §12).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from providers.bkash_config import BkashPaths

# What httpx adds on its own: the client sets none of them, so they say nothing about the project.
_TRANSPORT_HEADERS = frozenset({"host", "accept-encoding", "connection", "user-agent",
                                "content-length"})


@dataclass
class Exchange:
    scenario: str
    operation: str  # grant, refresh, create, execute, query, capture, void, search, refund, ...
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    status: int | None = None
    response_body: Any = None
    lost: str | None = None  # why the client never saw the answer (it is still shown)

    @property
    def payment_id(self) -> str | None:
        body = self.request_body if isinstance(self.request_body, dict) else {}
        found = body.get("paymentID") or body.get("paymentId")
        if found is None and isinstance(self.response_body, dict):
            found = self.response_body.get("paymentID")
        return found if isinstance(found, str) else None


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class Traffic:
    """Attach with ``httpx.AsyncClient(event_hooks=traffic.hooks(),
    transport=traffic.transport())``."""

    def __init__(self, paths: BkashPaths) -> None:
        self.exchanges: list[Exchange] = []
        self.scenario = ""
        self._open: dict[int, Exchange] = {}
        self._to_lose: set[tuple[str, str]] = set()
        self._operations = {getattr(paths, name): name for name in (
            "grant", "refresh", "create", "execute", "query", "capture", "void", "search")}
        self._operations |= {paths.refund: "refund", paths.refund_v2: "refund",
                             paths.refund_status_v2: "refund_status"}

    def hooks(self) -> dict[str, list]:
        return {"request": [self._on_request], "response": [self._on_response]}

    def transport(self, inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        return _LosingTransport(inner or httpx.AsyncHTTPTransport(), self)

    def lose_answer(self, operation: str, payment_id: str) -> None:
        """The next ``operation`` on ``payment_id``: bKash gets it and answers, the client does not
        see the answer (a dropped connection)."""
        self._to_lose.add((operation, payment_id))

    def of(self, scenario: str, operation: str | None = None) -> list[Exchange]:
        return [e for e in self.exchanges if e.scenario == scenario
                and (operation is None or e.operation == operation)]

    def operation_of(self, request: httpx.Request, body: Any) -> str:
        path = urlsplit(str(request.url)).path
        for suffix, operation in sorted(self._operations.items(), key=lambda kv: -len(kv[0])):
            if path.endswith(suffix):
                # v1 refund and refund status share one URL; refund status has no amount (§2 #10).
                if operation == "refund" and isinstance(body, dict) \
                        and body.get("amount") is None and body.get("refundAmount") is None:
                    return "refund_status"
                return operation
        return path

    async def _on_request(self, request: httpx.Request) -> None:
        body = _body(request.content)
        # .raw keeps the casing the client wrote (Authorization, X-App-Key) for the reader.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw
                   if k.decode("latin-1").lower() not in _TRANSPORT_HEADERS}
        exchange = Exchange(self.scenario, self.operation_of(request, body), request.method,
                            str(request.url), headers, body)
        self.exchanges.append(exchange)
        self._open[id(request)] = exchange

    async def _on_response(self, response: httpx.Response) -> None:
        await response.aread()
        exchange = self._open.pop(id(response.request), None)
        if exchange is not None:
            exchange.status, exchange.response_body = response.status_code, _body(response.content)

    def _should_lose(self, request: httpx.Request) -> Exchange | None:
        exchange = self._open.get(id(request))
        if exchange is None or (exchange.operation, exchange.payment_id or "") not in self._to_lose:
            return None
        self._to_lose.discard((exchange.operation, exchange.payment_id or ""))
        return exchange


class _LosingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, traffic: Traffic) -> None:
        self._inner, self._traffic = inner, traffic

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        exchange = self._traffic._should_lose(request)
        if exchange is None:
            return response
        try:
            exchange.status = response.status_code
            exchange.response_body = _body(await response.aread())
        finally:
            await response.aclose()
        self._traffic._open.pop(id(request), None)
        exchange.lost = ("the connection dropped before the client read this answer (golive "
                         "drops it on purpose, as a network can, after bKash has answered)")
        raise httpx.ReadError("golive: answer dropped after bKash sent it", request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()
