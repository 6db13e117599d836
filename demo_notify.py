"""The demo's merchant order system: a receiver that verifies every notification's signature (as
the README's receiver does) and keeps what it got, to print at the end of `make demo`."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from datetime import datetime, timezone

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowExecutionStatus

from contracts.notifications import (
    SIGNATURE_HEADER,
    STREAM_QUERY,
    STREAM_WORKFLOW,
    DeliveryState,
    NotificationEvent,
    StreamState,
)
from merchant_client.notifications import SignatureError, verify_notification
from providers.webhooks import WebhookEndpoint


class OrderSystem:
    def __init__(self) -> None:
        self.secret = secrets.token_urlsafe(32)
        self.events: dict[str, NotificationEvent] = {}  # by event_id: duplicates collapse
        self.refused = 0
        self.app = Starlette(routes=[Route("/hooks/payments", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = verify_notification(body, request.headers.get(SIGNATURE_HEADER), self.secret)
        except SignatureError:
            self.refused += 1
            return Response(status_code=400)
        self.events[event.event_id] = event
        return Response(status_code=204)

    def endpoint(self, base_url: str) -> WebhookEndpoint:
        return WebhookEndpoint(id="orders", url=f"{base_url}/hooks/payments",
                               secrets=[SecretStr(self.secret)])

    async def wait_for_streams(self, client: Client, since: datetime, timeout: float = 60) -> int:
        """Until every event of the streams started since ``since`` is delivered (a refund ledger's
        stream stays open for the refund window, so "delivered", not "closed"); how many streams."""
        stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        query = f"WorkflowType = '{STREAM_WORKFLOW}' AND StartTime >= '{stamp}'"
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            streams = [wf async for wf in client.list_workflows(query)]
            pending = 0
            for wf in streams:
                if wf.status == WorkflowExecutionStatus.RUNNING:
                    state = await client.get_workflow_handle(wf.id).query(
                        STREAM_QUERY, result_type=StreamState)
                    pending += sum(1 for r in state.events if r.state is DeliveryState.PENDING)
            if not pending or asyncio.get_running_loop().time() > deadline:
                return len(streams)
            await asyncio.sleep(0.3)

    def lines(self) -> list[str]:
        """One line per stream (a payment's own events, its refund ledger's), by sequence."""
        by_stream: dict[str, list[NotificationEvent]] = defaultdict(list)
        for event in self.events.values():
            by_stream[event.event_id.rpartition("/")[0]].append(event)
        out = []
        for key in sorted(by_stream):
            events = sorted(by_stream[key], key=lambda e: e.sequence)
            out.append(f"  {key}: " + ", ".join(f"#{e.sequence} {e.type.value}" for e in events))
        return out
