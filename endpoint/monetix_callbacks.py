"""Monetix callbacks: checked against the project's secret key (a bad or missing signature gets 400
and reaches no workflow), then a ``provider_callback`` update; the answer is 200 only once Temporal
has accepted the update, so a callback is never lost (Monetix re-sends on anything else)."""

from __future__ import annotations


from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.monetix import MonetixCallbackEvent, MonetixStage, workflow_id_for_payment
from contracts.monetix_status import SUCCESS, MonetixStatus
from endpoint.common import _short, log
from merchant_client import PaymentError, purchase_result, send_provider_callback
from providers.monetix_signing import loads, verify

# A Monetix callback is a few KB; a body this large is no callback, and reading on costs memory.
MAX_CALLBACK_BYTES = 1 << 20
# Temporal could not take the update now; Monetix re-sends on anything but 200.
_TEMPORAL_UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                         RPCStatusCode.RESOURCE_EXHAUSTED)


class MonetixCallbacks:
    def __init__(self, client: Client, projects: dict[int, str]) -> None:
        """``projects`` maps each Monetix project id this merchant owns to its secret key."""
        self._client = client
        self._projects = dict(projects)

    async def on_callback(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_CALLBACK_BYTES:
            return PlainTextResponse("callback body too large", status_code=413)
        try:
            # Numbers keep their original text: the signature is over what Monetix wrote (§2.2).
            data = loads(raw)
        except ValueError:
            return PlainTextResponse("callback body is not JSON", status_code=400)
        if not isinstance(data, dict):
            return PlainTextResponse("callback body is not a JSON object", status_code=400)
        project = data.get("project_id")
        secret = self._projects.get(_int_or_none(project))
        if secret is None:
            log.warning("Monetix callback for unknown project %s refused", _short(project))
            return PlainTextResponse("unknown project_id", status_code=400)
        if not verify(data, secret):
            log.warning("Monetix callback with a bad or missing signature refused (payment %s)",
                        _short((data.get("payment") or {}).get("id")
                               if isinstance(data.get("payment"), dict) else None))
            return PlainTextResponse("bad or missing signature", status_code=400)
        try:
            status = MonetixStatus.from_body(data, signature_verified=True)
        except ValueError as exc:
            return PlainTextResponse(f"callback not understood: {exc}", status_code=400)
        clarification = data.get("clarification_fields")
        event = MonetixCallbackEvent(
            status=status,
            clarification_fields=clarification if isinstance(clarification, dict) else None)
        handle = self._client.get_workflow_handle(workflow_id_for_payment(status.payment_id))
        try:
            ack = await send_provider_callback(self._client, event)
        except WorkflowUpdateFailedError as err:
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
                    return PlainTextResponse(f"unknown payment {status.payment_id}",
                                             status_code=404)
                raise
            # The purchase already ended: a late repeat. Acknowledge so Monetix stops re-sending,
            # but a final answer that contradicts ours means money moved after we stopped
            # listening: say so loudly, for reconciliation.
            await _report_contradiction(self._client, status)
            return PlainTextResponse("OK (payment already final)")
        return PlainTextResponse("OK" if ack.applied else "OK (already processed)")


async def _report_contradiction(client: Client, status: MonetixStatus) -> None:
    if not status.final:
        return
    try:
        result = await purchase_result(client, status.payment_id)
    except (PaymentError, Exception):  # noqa: BLE001 - cancelled or terminated: nothing to compare
        log.error("Monetix reports payment %s %r after its workflow ended without a result: "
                  "reconcile it", _short(status.payment_id), status.status)
        return
    if (status.status == SUCCESS) != (result.outcome is MonetixStage.SUCCESS):
        log.error("Monetix reports payment %s %r after the workflow ended %s: reconcile it",
                  _short(status.payment_id), status.status, result.outcome.value)


def _not_accepted(payment_id: str, err: Exception) -> Response:
    # Never 200 here: Monetix would stop re-sending and the callback would be lost.
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    log.warning("Monetix callback for payment %s not accepted, Temporal unavailable (%s); Monetix "
                "re-sends it", _short(payment_id), first_line)
    return PlainTextResponse("Temporal unavailable: callback not accepted, re-send later",
                             status_code=503)


def _int_or_none(value) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
