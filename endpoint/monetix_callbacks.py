"""Monetix callbacks: checked against the project's secret key (a bad or missing signature gets 400
and reaches no workflow), then a ``provider_callback`` update; the answer is 200 only once Temporal
has accepted the update, so a callback is never lost (Monetix re-sends on anything else).

The cost of a callback is bounded by its size whoever sends it: the body is read as a stream up to
64 KiB (endpoint/limits.py), a signature that cannot be one is refused before any signing work, the
body's shape is held to what a callback needs (providers/monetix_signing.py ``CALLBACK_BOUNDS``),
and parsing and verifying run in a worker thread so that no request holds the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.common import DEFAULT_ACCOUNT
from contracts.monetix import MonetixCallbackEvent, MonetixStage, workflow_id_for_payment
from contracts.monetix_status import REFUNDED, SUCCESS, MonetixStatus
from endpoint.metrics import METRICS
from endpoint.common import _short, log, refused
from endpoint.limits import MAX_BODY_BYTES, BodyRefused, read_body
from merchant_client import PaymentError, purchase_result, send_provider_callback
from providers.monetix_signing import CALLBACK_BOUNDS, Meter, Refused, authenticate, loads

KIND = "monetix callbacks"  # in the refusal log
MAX_CALLBACK_BYTES = MAX_BODY_BYTES
# Parsing and verifying a callback is CPU work (≤ 64 KiB, a few ms): in threads, a few at a time, so
# the event loop keeps answering every other request while a large one is checked.
VERIFY_SLOTS = 4
# Temporal could not take the update now; Monetix re-sends on anything but 200.
_TEMPORAL_UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                         RPCStatusCode.RESOURCE_EXHAUSTED)
_SIGNATURE_REASONS = (Refused.MISSING_SIGNATURE, Refused.MALFORMED_SIGNATURE, Refused.BAD_SIGNATURE)


class CallbackRefused(Exception):
    """A callback answered without reaching Temporal: ``status``, a fixed ``reason`` to count, and
    the answer's text."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class VerifiedCallback:
    data: dict[str, Any]
    project_id: int
    status: MonetixStatus


def examine(raw: bytes, projects: Mapping[int, str], meter: Meter | None = None) -> VerifiedCallback:
    """Parse, bound and verify one callback body (CPU only: the endpoint runs it in a thread).

    Work is linear in ``len(raw)``: one JSON parse, one walk that stops at the first bound crossed,
    at most three HMACs over a signing string held to about twice the body (``Bounds.for_body``)."""
    try:
        # Numbers keep their original text: the signature is over what Monetix wrote (§2.2).
        data = loads(raw)
    except ValueError:
        raise CallbackRefused(400, "not JSON", "callback body is not JSON") from None
    if not isinstance(data, dict):
        raise CallbackRefused(400, "not a JSON object", "callback body is not a JSON object")
    project = _int_or_none(data.get("project_id"))
    secret = projects.get(project) if project is not None else None
    if secret is None:
        raise CallbackRefused(400, "unknown project", "unknown project_id")
    try:
        authenticate(data, secret, bounds=CALLBACK_BOUNDS.for_body(len(raw)), meter=meter)
    except Refused as exc:
        text = "bad or missing signature" if exc.reason in _SIGNATURE_REASONS else "callback refused"
        raise CallbackRefused(400, exc.reason, f"{text}: {exc}") from None
    try:
        status = MonetixStatus.from_body(data, signature_verified=True)
    except ValueError as exc:
        raise CallbackRefused(400, "not understood", f"callback not understood: {exc}") from None
    return VerifiedCallback(data, project, status)


class MonetixCallbacks:
    def __init__(self, client: Client, projects: dict[int, str],
                 accounts: Mapping[int, str] | None = None) -> None:
        """``projects`` maps each Monetix project id this merchant owns to its secret key;
        ``accounts`` each project to its merchant account (config.EndpointSettings): a callback goes
        to the purchase of that account, whose workflow id names it unless it is the default."""
        self._client = client
        self._projects = dict(projects)
        self._accounts = dict(accounts) if accounts is not None else None
        self._slots = asyncio.Semaphore(VERIFY_SLOTS)

    async def on_callback(self, request: Request) -> Response:
        try:
            raw = await read_body(request, limit=MAX_CALLBACK_BYTES)
        except BodyRefused as exc:
            refused(KIND, exc.reason)
            # Connection: close, so what is left of the body is never read.
            return PlainTextResponse(exc.message, status_code=exc.status,
                                     headers={"Connection": "close"})
        try:
            async with self._slots:
                verified = await asyncio.to_thread(examine, raw, self._projects)
        except CallbackRefused as exc:
            refused(KIND, exc.reason)
            return PlainTextResponse(exc.message, status_code=exc.status)
        status, data = verified.status, verified.data
        clarification = data.get("clarification_fields")
        event = MonetixCallbackEvent(
            status=status,
            clarification_fields=clarification if isinstance(clarification, dict) else None,
            # Two projects of one merchant may share a payment_id. With account settings (what
            # `python -m endpoint` has), each project is a merchant account whose purchases have
            # their own workflow ids: the callback goes to its account's purchase and names the
            # account, which the purchase checks. Without them, serving several projects, it names
            # the project, and only a purchase started for that project takes it
            # (workflows/monetix_purchase.py). Serving one, every other project was refused above.
            project_id=verified.project_id if len(self._projects) > 1 else None,
            account_id=self._accounts.get(verified.project_id, DEFAULT_ACCOUNT)
            if self._accounts is not None else None)
        handle = self._client.get_workflow_handle(
            workflow_id_for_payment(status.payment_id, event.account_id or DEFAULT_ACCOUNT))
        try:
            ack = await send_provider_callback(self._client, event)
        except WorkflowUpdateFailedError as err:
            refused(KIND, "refused by the purchase")
            return PlainTextResponse(f"callback refused: {err.cause}", status_code=409)
        except RuntimeError as err:  # a lazily connected client that cannot reach Temporal
            return _not_accepted(status.payment_id, err)
        except RPCError as err:
            if err.status in _TEMPORAL_UNAVAILABLE:
                return _not_accepted(status.payment_id, err)
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                # Signed, yet Temporal cannot take it (an id over its length limit): re-sending the
                # same callback cannot help, so not a 5xx.
                log.warning("Monetix callback for payment %s not routable: %s",
                            _short(status.payment_id), err.message)
                return PlainTextResponse(f"callback not understood: {err.message}", status_code=400)
            if err.status != RPCStatusCode.NOT_FOUND:
                raise  # 500: Monetix re-sends later
            try:
                await handle.describe()
            except RPCError as missing:
                if missing.status == RPCStatusCode.NOT_FOUND:
                    refused(KIND, "unknown payment")
                    return PlainTextResponse(f"unknown payment {status.payment_id}",
                                             status_code=404)
                raise
            # The purchase already ended: a late repeat. Acknowledge so Monetix stops re-sending,
            # but a final answer that contradicts ours means money moved after we stopped
            # listening: say so loudly, for reconciliation.
            await _report_contradiction(self._client, status, event.account_id or DEFAULT_ACCOUNT)
            METRICS.count(KIND, "duplicate", "payment already final")
            return PlainTextResponse("OK (payment already final)")
        METRICS.count(KIND, "accepted" if ack.applied else "duplicate")
        return PlainTextResponse("OK" if ack.applied else "OK (already processed)")


async def _report_contradiction(client: Client, status: MonetixStatus, account_id: str) -> None:
    if not status.final:
        return
    try:
        result = await purchase_result(client, status.payment_id, account_id=account_id)
    except (PaymentError, Exception):  # noqa: BLE001 - cancelled or terminated: nothing to compare
        log.error("Monetix reports payment %s %r after its workflow ended without a result: "
                  "reconcile it", _short(status.payment_id), status.status)
        return
    # A refunded purchase was a successful one: its refunds are the refunds ledger's business.
    paid = status.status == SUCCESS or status.status in REFUNDED
    if paid != (result.outcome is MonetixStage.SUCCESS):
        log.error("Monetix reports payment %s %r after the workflow ended %s: reconcile it",
                  _short(status.payment_id), status.status, result.outcome.value)


def _not_accepted(payment_id: str, err: Exception) -> Response:
    # Never 200 here: Monetix would stop re-sending and the callback would be lost.
    METRICS.count(KIND, "unavailable")
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    log.warning("Monetix callback for payment %s not accepted, Temporal unavailable (%s); Monetix "
                "re-sends it", _short(payment_id), first_line)
    return PlainTextResponse("Temporal unavailable: callback not accepted, re-send later",
                             status_code=503)


def _int_or_none(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        return int(value)
    except ValueError:  # not a number, or one of thousands of digits
        return None
