"""Callback delivery (reference §4.1): signed JSON POSTed to the merchant, re-sent until the merchant
answers HTTP 200, every attempt recorded. Callback faults (faults.py) decide whether a callback is
lost, delayed, duplicated, followed by an older one, or replayed late.

Each callback is delivered by its own asyncio task, as the platform delivers callbacks
independently: a retried intermediate callback does not hold back the final one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from sandbox.common.faults import Fault, FaultBook

from .config import MonetixSandboxConfig
from .faults import FaultKind, Operation, Target

log = logging.getLogger(__name__)


class Delivery(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"  # the merchant answered 200 (§4.1: the only acknowledgement)
    LOST = "lost"  # a `lose` fault: never sent
    ABANDONED = "abandoned"  # every attempt failed, or there was nowhere to send it


class Copy(StrEnum):
    ORIGINAL = "callback"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    LATE_REPLAY = "late_replay"


@dataclass
class Attempt:
    at: float
    url: str
    status_code: int | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {"at": self.at, "url": self.url, "status_code": self.status_code, "error": self.error}


@dataclass
class CallbackRecord:
    seq: int
    project_id: int
    payment_id: str
    status: str  # payment.status of the body
    body: dict[str, Any]  # exactly what is sent, signature included; copies share it byte for byte
    url: str | None
    created_at: float
    copy: Copy = Copy.ORIGINAL
    copy_of: int | None = None
    fault: str | None = None
    delivery: Delivery = Delivery.PENDING
    note: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict:
        operation = self.body.get("operation") if isinstance(self.body.get("operation"), dict) else {}
        return {"seq": self.seq, "project_id": self.project_id, "payment_id": self.payment_id,
                "status": self.status, "operation_type": operation.get("type"),
                "operation_status": operation.get("status"),
                "merchant_refund_id": (self.body.get("payment") or {}).get("merchant_refund_id"),
                "kind": self.copy.value, "copy_of": self.copy_of,
                "fault": self.fault, "delivery": self.delivery.value,
                "delivered": self.delivery is Delivery.DELIVERED, "note": self.note,
                "url": self.url, "created_at": self.created_at,
                "attempts": [a.to_dict() for a in self.attempts], "body": self.body}


class CallbackOutbox:
    def __init__(self, config: MonetixSandboxConfig, clock: Callable[[], float], faults: FaultBook,
                 http: httpx.AsyncClient | None) -> None:
        self.config = config
        self.clock = clock
        self.faults = faults
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self.records: list[CallbackRecord] = []

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self.records = []

    async def aclose(self) -> None:
        self.reset()
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    async def idle(self) -> None:
        """Wait until every delivery in flight (retries, delays and replays included) has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def emit(self, history: list[CallbackRecord], target: Target, body: dict[str, Any],
             url: str | None, delay_seconds: float = 0.0) -> CallbackRecord:
        """Queue one callback of a payment; ``history`` is that payment's list of callbacks."""
        assert target.project_id is not None and target.payment_id is not None and target.status
        previous = next((r for r in reversed(history) if r.copy is Copy.ORIGINAL), None)
        fault = self.faults.take(Operation.CALLBACK, target)
        record = self._record(target.project_id, target.payment_id, target.status, body, url,
                              fault=fault.kind.value if fault else None)
        history.append(record)
        if fault is not None and fault.kind is FaultKind.LOSE:
            record.delivery, record.note = Delivery.LOST, "lost by a 'lose' fault; only the status request tells"
            return record
        self._spawn(self._run(record, fault, previous, history, delay_seconds))
        return record

    def _record(self, project_id: int, payment_id: str, status: str, body: dict[str, Any],
                url: str | None, **kw: Any) -> CallbackRecord:
        record = CallbackRecord(next(self._seq), project_id, payment_id, status, body, url, self.clock(), **kw)
        self.records.append(record)
        return record

    def _copy(self, original: CallbackRecord, copy: Copy, history: list[CallbackRecord]) -> CallbackRecord:
        record = self._record(original.project_id, original.payment_id, original.status, original.body,
                              original.url, copy=copy, copy_of=original.seq)
        history.append(record)
        return record

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, record: CallbackRecord, fault: Fault | None, previous: CallbackRecord | None,
                   history: list[CallbackRecord], delay_seconds: float) -> None:
        kind = fault.kind if fault is not None else None
        wait = delay_seconds + (fault.spec.delay_seconds if fault is not None and kind is FaultKind.DELAY else 0)
        if wait > 0:
            await asyncio.sleep(wait)
        delivered = await self._deliver(record)
        if kind is FaultKind.DUPLICATE:
            await self._deliver(self._copy(record, Copy.DUPLICATE, history))
        elif kind is FaultKind.OUT_OF_ORDER:
            if previous is None:
                record.note = "out_of_order: this payment had no earlier callback to re-deliver"
            else:
                await self._deliver(self._copy(previous, Copy.OUT_OF_ORDER, history))
        elif kind is FaultKind.LATE_REPLAY and delivered:
            assert fault is not None
            await asyncio.sleep(fault.spec.delay_seconds)
            await self._deliver(self._copy(record, Copy.LATE_REPLAY, history))

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        if self._own_http is None:
            self._own_http = httpx.AsyncClient(timeout=self.config.callback_timeout_seconds)
        return self._own_http

    async def _deliver(self, record: CallbackRecord) -> bool:
        if record.url is None:
            record.delivery = Delivery.ABANDONED
            record.note = ("no merchant_callback_url in the request and no default_callback_url configured; "
                           "the status request is the only way to learn this result")
            return False
        content = json.dumps(record.body, ensure_ascii=False).encode("utf-8")
        delays = self.config.callback_retry_delays
        for n in range(len(delays) + 1):
            if n:
                await asyncio.sleep(delays[n - 1])
            attempt = Attempt(at=self.clock(), url=record.url)
            record.attempts.append(attempt)
            try:
                response = await self._client().post(
                    record.url, content=content, headers={"Content-Type": "application/json"},
                    timeout=self.config.callback_timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - any failure is "no 200": retry, never crash the task
                attempt.error = f"{type(exc).__name__}: {exc}"
                continue
            attempt.status_code = response.status_code
            # §4.1: delivery counts only on HTTP 200 OK; the body is ignored, any other status retries.
            if response.status_code == 200:
                record.delivery = Delivery.DELIVERED
                return True
        record.delivery = Delivery.ABANDONED
        record.note = f"no HTTP 200 after {len(record.attempts)} attempts (compressed §4.1 schedule)"
        log.info("monetix sandbox: callback %s for payment %s abandoned", record.seq, record.payment_id)
        return False
