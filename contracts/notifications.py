"""Notifications to the merchant's order system (README "Notifications"): the event every payment,
refund and reconciliation sends, the stream workflow's inputs and state, and the signature both
sides compute.

The signature is Stripe's shape (production.md §4): the header
``Payments-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with one ``v1`` per
secret the endpoint currently has, so a secret is rotated by adding the new one, moving receivers
over, then removing the old. The timestamp is inside the signed text, so a captured request cannot
be replayed outside the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.common import Model, Provider

SIGNATURE_HEADER = "Payments-Signature"
EVENT_ID_HEADER = "Payments-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300  # Stripe's 5 minutes
# Delivery: increasing delays for a budget; the platforms retry for 1-3 days (production.md §4).
DEFAULT_BUDGET = timedelta(days=3)
DEFAULT_FIRST_RETRY = timedelta(seconds=30)
DEFAULT_MAX_RETRY_INTERVAL = timedelta(hours=1)
STREAM_WORKFLOW = "NotificationStream"
STREAM_ID_PREFIX = "notify:"
# The signals and query of a stream (names kept stable: payments in flight send them).
EVENT_SIGNAL = "notification_event"  # carries a PublishInput
STREAM_QUERY = "notifications"
PUBLISH_ACTIVITY = "publish_notification"


class EventType(StrEnum):
    """What happened; the merchant acts on each (issue 13 §1)."""

    BKASH_AWAITING_APPROVAL = "bkash.awaiting_approval"
    BKASH_AUTHORIZED = "bkash.authorized"
    BKASH_CAPTURED = "bkash.captured"
    BKASH_VOIDED = "bkash.voided"
    BKASH_DECLINED = "bkash.declined"
    BKASH_CANCELLED = "bkash.cancelled"
    BKASH_EXPIRED = "bkash.expired"
    BKASH_FAILED = "bkash.failed"
    MONETIX_INSTRUCTIONS_READY = "monetix.instructions_ready"
    MONETIX_AWAITING_CLARIFICATION = "monetix.awaiting_clarification"
    MONETIX_SUCCESS = "monetix.success"
    MONETIX_DECLINED = "monetix.declined"
    MONETIX_EXPIRED = "monetix.expired"
    MONETIX_FAILED = "monetix.failed"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    RECONCILIATION_DIVERGENCE = "reconciliation.divergence"


class NotificationEvent(Model):
    """One event, exactly the JSON body the merchant receives.

    ``event_id`` is ``<stream id>/<sequence>``: stable across retries and replays, so duplicates
    share it; ``sequence`` orders one payment's events (delivery order is not guaranteed). Amounts
    are poisha. No secret and no customer data beyond what the merchant already has: ids, stages,
    amounts, the bkashURL the merchant redirects the customer to."""

    event_id: str
    type: EventType
    sequence: int = Field(ge=1)
    occurred_at: datetime
    payment_key: str  # the payment's workflow id (its business key)
    invoice_number: str | None = None
    account_id: str = "default"
    provider: Provider
    stage: str
    amount_poisha: int | None = None
    paid_poisha: int | None = None
    refunded_poisha: int | None = None
    currency: Literal["BDT"] = "BDT"
    provider_payment_id: str | None = None
    trx_id: str | None = None
    bkash_url: str | None = None
    refund_id: str | None = None
    detail: str | None = None
    # reconciliation.divergence: what the provider says against what the project recorded
    divergence: dict[str, str | int | None] | None = None

    def body(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class StreamStart(Model):
    """A stream's input. A payment's stream gets its events as signals (signal-with-start); a
    replay carries its one event here."""

    stream_id: str
    first: NotificationEvent | None = None
    last: bool = False  # ``first`` is also the last event
    replay_of: str | None = None


class PublishInput(Model):
    """From a workflow to its stream (the local activity's input and the signal's argument): one
    event and/or ``close`` (no more events come after it)."""

    stream_id: str
    event: NotificationEvent | None = None
    close: bool = False
    summary: str = ""


class NotificationPlan(Model):
    """Where and how long to deliver: the worker's configuration (ids only, never a secret)."""

    endpoints: list[str]
    budget: timedelta = DEFAULT_BUDGET
    first_retry: timedelta = DEFAULT_FIRST_RETRY
    max_retry_interval: timedelta = DEFAULT_MAX_RETRY_INTERVAL


class DeliveryInput(Model):
    endpoint: str
    event: NotificationEvent


class DeliveryReceipt(Model):
    endpoint: str
    status_code: int
    attempt: int


class DeliveryState(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"  # the budget ran out; `events replay <event_id>` sends it again
    NO_ENDPOINT = "NO_ENDPOINT"  # no endpoint configured on the worker


class Delivery(Model):
    endpoint: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: int | None = None  # the delivering attempt's number
    at: datetime | None = None
    last_error: str | None = None


class EventRecord(Model):
    event: NotificationEvent
    deliveries: list[Delivery] = []

    @property
    def state(self) -> DeliveryState:
        states = {d.state for d in self.deliveries}
        for s in (DeliveryState.PENDING, DeliveryState.UNDELIVERED, DeliveryState.DELIVERED):
            if s in states:
                return s
        return DeliveryState.NO_ENDPOINT


class StreamState(Model):
    stream_id: str
    events: list[EventRecord] = []
    closed: bool = False

    @property
    def undelivered(self) -> list[EventRecord]:
        return [r for r in self.events if r.state is DeliveryState.UNDELIVERED]


def stream_id_for(workflow_id: str) -> str:
    return f"{STREAM_ID_PREFIX}{workflow_id}"


def event_id_for(stream_id: str, sequence: int) -> str:
    return f"{stream_id.removeprefix(STREAM_ID_PREFIX)}/{sequence}"


def stream_of(event_id: str) -> str:
    """The stream workflow holding ``event_id`` (``<payment workflow id>/<n>``)."""
    key, sep, seq = event_id.rpartition("/")
    if not sep or not key or not seq.isdigit():
        raise ValueError(f"event_id {event_id[:80]!r}: not an event id (<payment key>/<sequence>, "
                         "as in the Payments-Event-Id header)")
    return stream_id_for(key)


# -- the signature ------------------------------------------------------------------------------


class SignatureError(ValueError):
    """A notification that must not be trusted: the reason names what failed, never a secret."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets: Iterable[str], timestamp: int | None = None) -> str:
    """The ``Payments-Signature`` value: ``t=...,v1=...[,v1=...]`` (one per current secret)."""
    t = int(time.time()) if timestamp is None else timestamp
    macs = [f"v1={_mac(s, t, body)}" for s in secrets]
    if not macs:
        raise ValueError("an endpoint needs at least one signing secret")
    return ",".join([f"t={t}", *macs])


def verify_signature(body: bytes, header: str | None, secrets: str | Iterable[str], *,
                     tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
                     now: float | None = None) -> int:
    """Check ``header`` over the raw ``body`` with any of ``secrets``; return the timestamp.

    Constant-time comparison; a timestamp further than ``tolerance_seconds`` from ``now`` is
    refused (a replayed request), as is a header without a timestamp or a v1 signature."""
    if isinstance(secrets, str):
        secrets = [secrets]
    secrets = [s for s in secrets if s]
    if not secrets:
        raise SignatureError("no signing secret configured for this endpoint")
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} header missing")
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} header must hold t=<unix seconds> and v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError(f"{SIGNATURE_HEADER} timestamp is {abs(current - timestamp):.0f} s "
                             f"from now, outside the {tolerance_seconds:g} s tolerance")
    expected = [_mac(s, timestamp, body) for s in secrets]
    # Every pair is compared (no early exit), each in constant time.
    matched = False
    for sig in signatures:
        for exp in expected:
            matched |= hmac.compare_digest(sig.encode(), exp.encode())
    if not matched:
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body (tampered, or signed "
                             "with another secret)")
    return timestamp
