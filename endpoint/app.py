"""The merchant-facing HTTP endpoint (the callbackURL given to bKash and to Monetix).

It only verifies, routes and waits for Temporal to accept:
- the customer's browser returning from bKash's page becomes a ``customer_returned`` update of the
  payment's workflow, and the browser is sent on to a result page that shows what bKash confirmed,
  not what the URL claimed;
- a Monetix callback is checked against the project's secret key (a bad or missing signature gets 400
  and reaches no workflow) and becomes a ``provider_callback`` update; the answer is 200 only once
  Temporal has accepted the update, so a callback is never lost (Monetix re-sends on anything else).
"""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.bkash import BkashStage, BrowserReturn, BrowserReturnStatus, workflow_id_for_invoice
from contracts.monetix import MonetixCallbackEvent, MonetixStage, workflow_id_for_payment
from contracts.monetix_status import SUCCESS, MonetixStatus
from merchant_client import PaymentError, bkash_view, purchase_result, send_customer_return, \
    send_provider_callback
from providers.monetix_signing import loads, verify

log = logging.getLogger("endpoint")

# Every bKash payment's workflow id, hence every callbackURL this endpoint hands out, has this prefix;
# any other id (a Monetix purchase, another application's workflow) is no bKash payment.
BKASH_WORKFLOW_PREFIX = workflow_id_for_invoice("")
# A paymentID is "TR" + mode + alphanumerics + epoch ms and the redirect signature 10 alphanumerics
# (reference §4.2-4.3). The bound is generous on purpose: it only keeps junk out of update ids (at most
# 1000 characters in Temporal), logs and answers, it does not second-guess bKash's format.
_RETURN_TOKEN = re.compile(r"[!-~]{1,128}")  # printable ASCII, no space
# A Monetix callback is a few KB; a body this large is no callback, and reading on costs memory.
MAX_CALLBACK_BYTES = 1 << 20
# Temporal could not take the update now; Monetix re-sends on anything but 200.
_TEMPORAL_UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                         RPCStatusCode.RESOURCE_EXHAUSTED)

# What the customer is told, by stage.
OUTCOME = {
    BkashStage.AUTHORIZED: "authorized", BkashStage.CAPTURING: "authorized",
    BkashStage.CAPTURED: "authorized", BkashStage.VOIDING: "voided",
    BkashStage.VOIDED: "voided", BkashStage.DECLINED: "declined",
    BkashStage.FAILED: "declined", BkashStage.CANCELLED: "cancelled",
    BkashStage.EXPIRED: "expired",
}


def create_app(client: Client, *, result_page_url: str | None = None,
               monetix_projects: dict[int, str] | None = None) -> Starlette:
    """``monetix_projects`` maps each Monetix project id this merchant owns to its secret key."""
    monetix_projects = dict(monetix_projects or {})

    async def current(workflow_id: str) -> tuple[BkashStage, str | None, list[str]] | None:
        """(stage, paymentID, earlier paymentIDs) of a running or finished payment; None if unknown."""
        if not workflow_id.startswith(BKASH_WORKFLOW_PREFIX):
            return None
        return await bkash_view(client, workflow_id)

    def to_result_page(workflow_id: str, stage: BkashStage, payment_id: str | None) -> Response:
        if result_page_url:
            query = urlencode({"payment": workflow_id, "outcome": OUTCOME.get(stage, "pending"),
                               "paymentID": payment_id or ""})
            return RedirectResponse(f"{result_page_url}?{query}", status_code=303)
        # Our own result page, rendered from what the workflow just answered: a redirect to
        # /bkash/result would ask the workflow again (a billable query) for the same answer.
        return result_page(workflow_id, stage, payment_id)

    async def bkash_return(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        params = request.query_params
        payment_id, status = params.get("paymentID"), params.get("status")
        signature = params.get("signature") or None
        if not payment_id:
            return PlainTextResponse("paymentID is missing from the bKash return", status_code=400)
        if not _RETURN_TOKEN.fullmatch(payment_id):
            return PlainTextResponse("paymentID is not a bKash paymentID (printable ASCII, at most "
                                     "128 characters)", status_code=400)
        if status not in {s.value for s in BrowserReturnStatus}:
            return PlainTextResponse("status must be success, failure or cancel", status_code=400)
        if signature is not None and not _RETURN_TOKEN.fullmatch(signature):
            return PlainTextResponse("signature is not a bKash redirect signature (printable ASCII, "
                                     "at most 128 characters)", status_code=400)
        if not workflow_id.startswith(BKASH_WORKFLOW_PREFIX):
            return PlainTextResponse(f"no payment {workflow_id}", status_code=404)
        ret = BrowserReturn(payment_id=payment_id, status=BrowserReturnStatus(status),
                            signature=signature)
        try:
            # A reloaded page repeats paymentID, status and signature → the same update id, so the
            # repeat is absorbed; a forged return without bKash's signature gets its own id.
            outcome = await send_customer_return(
                client, workflow_id, ret,
                update_id=f"return-{payment_id}-{status}-{ret.signature or 'unsigned'}")
        except (WorkflowUpdateFailedError, RPCError) as err:
            if isinstance(err, RPCError) and err.status not in (RPCStatusCode.NOT_FOUND,
                                                                RPCStatusCode.INVALID_ARGUMENT):
                raise
            known = await current(workflow_id)
            if known is None:
                return PlainTextResponse(f"no payment {workflow_id}", status_code=404)
            stage, current_id, earlier = known
            if payment_id != current_id and payment_id not in earlier:
                log.warning("bKash return for %s carried a foreign paymentID; ignored", workflow_id)
                return PlainTextResponse(
                    f"paymentID {payment_id} does not belong to payment {workflow_id}",
                    status_code=409)
            # A repeated or late return of this payment, or one whose claim the workflow refused
            # (a forged status or signature): nothing changed; show where it really stands.
            log.log(logging.WARNING if isinstance(err, WorkflowUpdateFailedError) else logging.INFO,
                    "bKash return for %s (status=%s) refused by the payment at %s: %s",
                    workflow_id, status, stage.value, _reason(err))
            return to_result_page(workflow_id, stage, current_id)
        if outcome.bkash_url:
            return RedirectResponse(outcome.bkash_url, status_code=303)
        return to_result_page(workflow_id, outcome.stage, outcome.payment_id)

    async def bkash_result(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        known = await current(workflow_id)
        if known is None:
            return PlainTextResponse(f"no payment {workflow_id}", status_code=404)
        stage, payment_id, _ = known
        return result_page(workflow_id, stage, payment_id)

    async def monetix_callback(request: Request) -> Response:
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
        secret = monetix_projects.get(_int_or_none(project))
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
        handle = client.get_workflow_handle(workflow_id_for_payment(status.payment_id))
        try:
            ack = await send_provider_callback(client, event)
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
            await _report_contradiction(client, status)
            return PlainTextResponse("OK (payment already final)")
        return PlainTextResponse("OK" if ack.applied else "OK (already processed)")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/bkash/return/{workflow_id:path}", bkash_return, methods=["GET"]),
        Route("/bkash/result/{workflow_id:path}", bkash_result, methods=["GET"]),
        Route("/monetix/callback", monetix_callback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


def result_page(workflow_id: str, stage: BkashStage, payment_id: str | None) -> HTMLResponse:
    outcome = OUTCOME.get(stage, "pending")
    return HTMLResponse(
        f"<!doctype html><title>Payment {html.escape(outcome)}</title>"
        f"<h1>Payment {html.escape(outcome)}</h1>"
        f"<p data-stage='{stage.value}' data-outcome='{outcome}'>"
        f"{html.escape(workflow_id)} · bKash paymentID {html.escape(payment_id or '-')}</p>")


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


def _reason(err: Exception) -> str:
    cause = getattr(err, "cause", None)
    return str(getattr(cause, "message", None) or cause or err)


def _short(value: object, limit: int = 80) -> str:
    """A sender-controlled value as it may appear in a log line: repr'd (no line breaks), bounded."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
