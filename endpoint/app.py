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
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from providers.monetix import MonetixStatus
from providers.monetix_signing import loads, verify
from workflows.bkash import BkashAuthCapture
from workflows.bkash_models import BkashStage, BrowserReturn, BrowserReturnStatus
from workflows.monetix import MonetixGatePurchase
from workflows.monetix_models import DisplayItem, MonetixCallbackEvent, workflow_id_for_payment

log = logging.getLogger("endpoint")

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

    async def current(handle: WorkflowHandle) -> tuple[BkashStage, str | None, list[str]] | None:
        """(stage, paymentID, earlier paymentIDs) of a running or finished payment; None if unknown."""
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if desc.close_time is None:
            state = await handle.query(BkashAuthCapture.state)
            return state.stage, state.payment_id, state.previous_payment_ids
        result = await client.get_workflow_handle_for(BkashAuthCapture.run, handle.id).result()
        return result.stage, result.payment_id, []

    def to_result_page(workflow_id: str, stage: BkashStage, payment_id: str | None) -> Response:
        if result_page_url:
            query = urlencode({"payment": workflow_id, "outcome": OUTCOME.get(stage, "pending"),
                               "paymentID": payment_id or ""})
            return RedirectResponse(f"{result_page_url}?{query}", status_code=303)
        return RedirectResponse(f"/bkash/result/{quote(workflow_id, safe='')}", status_code=303)

    async def bkash_return(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        params = request.query_params
        payment_id, status = params.get("paymentID"), params.get("status")
        if not payment_id:
            return PlainTextResponse("paymentID is missing from the bKash return", status_code=400)
        if status not in {s.value for s in BrowserReturnStatus}:
            return PlainTextResponse("status must be success, failure or cancel", status_code=400)
        ret = BrowserReturn(payment_id=payment_id, status=BrowserReturnStatus(status),
                            signature=params.get("signature"))
        handle = client.get_workflow_handle(workflow_id)
        try:
            # A reloaded page repeats paymentID, status and signature → the same update id, so the
            # repeat is absorbed; a forged return without bKash's signature gets its own id.
            outcome = await handle.execute_update(
                BkashAuthCapture.customer_returned, ret,
                id=f"return-{payment_id}-{status}-{ret.signature or 'unsigned'}")
        except (WorkflowUpdateFailedError, RPCError) as err:
            if isinstance(err, RPCError) and err.status != RPCStatusCode.NOT_FOUND:
                raise
            known = await current(handle)
            if known is None:
                return PlainTextResponse(f"no payment {workflow_id}", status_code=404)
            stage, current_id, earlier = known
            if payment_id != current_id and payment_id not in earlier:
                log.warning("bKash return for %s carried a foreign paymentID; ignored", workflow_id)
                return PlainTextResponse(
                    f"paymentID {payment_id} does not belong to payment {workflow_id}",
                    status_code=409)
            # A repeated or late return of this payment: show where it really stands.
            return to_result_page(workflow_id, stage, current_id)
        if outcome.bkash_url:
            return RedirectResponse(outcome.bkash_url, status_code=303)
        return to_result_page(workflow_id, outcome.stage, outcome.payment_id)

    async def bkash_result(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        known = await current(client.get_workflow_handle(workflow_id))
        if known is None:
            return PlainTextResponse(f"no payment {workflow_id}", status_code=404)
        stage, payment_id, _ = known
        outcome = OUTCOME.get(stage, "pending")
        body = (f"<!doctype html><title>Payment {html.escape(outcome)}</title>"
                f"<h1>Payment {html.escape(outcome)}</h1>"
                f"<p data-stage='{stage.value}' data-outcome='{outcome}'>"
                f"{html.escape(workflow_id)} · bKash paymentID {html.escape(payment_id or '-')}</p>")
        return HTMLResponse(body)

    async def monetix_callback(request: Request) -> Response:
        raw = await request.body()
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
            log.warning("Monetix callback for unknown project %r refused", project)
            return PlainTextResponse("unknown project_id", status_code=400)
        if not verify(data, secret):
            log.warning("Monetix callback with a bad or missing signature refused (payment %r)",
                        (data.get("payment") or {}).get("id") if isinstance(data.get("payment"),
                                                                            dict) else None)
            return PlainTextResponse("bad or missing signature", status_code=400)
        try:
            status = MonetixStatus.from_body(data, signature_verified=True)
        except ValueError as exc:
            return PlainTextResponse(f"callback not understood: {exc}", status_code=400)
        latest = status.operations[-1] if status.operations else None
        clarification = data.get("clarification_fields")
        event = MonetixCallbackEvent(
            payment_id=status.payment_id, payment_status=status.status,
            operation_id=latest.id if latest else None,
            operation_type=latest.type if latest else None,
            operation_status=latest.status if latest else None,
            code=status.code, message=status.message, sum_amount=status.sum_amount,
            sum_currency=status.sum_currency, account_number=status.account_number,
            provider_payment_id=status.provider_payment_id,
            display_data=[DisplayItem(**d.model_dump()) for d in status.display_data],
            clarification_fields=clarification if isinstance(clarification, dict) else None)
        handle = client.get_workflow_handle(workflow_id_for_payment(status.payment_id))
        try:
            ack = await handle.execute_update(MonetixGatePurchase.provider_callback, event,
                                              id=event.update_id)
        except WorkflowUpdateFailedError as err:
            return PlainTextResponse(f"callback refused: {err.cause}", status_code=409)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise  # 500: Monetix re-sends later
            try:
                await handle.describe()
            except RPCError as missing:
                if missing.status == RPCStatusCode.NOT_FOUND:
                    return PlainTextResponse(f"unknown payment {status.payment_id}",
                                             status_code=404)
                raise
            # The purchase already ended: a late repeat. Acknowledge so Monetix stops re-sending.
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


def _int_or_none(value) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
