"""The customer's browser returning from bKash's page → a ``customer_returned`` update of the
payment's workflow, and the result page that shows what bKash confirmed, not what the URL claimed."""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.bkash import BkashStage, BrowserReturn, BrowserReturnStatus, workflow_id_for_invoice
from endpoint.common import _reason, log
from merchant_client import bkash_view, send_customer_return

# Every bKash payment's workflow id, hence every callbackURL this endpoint hands out, has this prefix;
# any other id (a Monetix purchase, another application's workflow) is no bKash payment.
BKASH_WORKFLOW_PREFIX = workflow_id_for_invoice("")
# A paymentID is "TR" + mode + alphanumerics + epoch ms and the redirect signature 10 alphanumerics
# (reference §4.2-4.3). The bound is generous on purpose: it only keeps junk out of update ids (at most
# 1000 characters in Temporal), logs and answers, it does not second-guess bKash's format.
_RETURN_TOKEN = re.compile(r"[!-~]{1,128}")  # printable ASCII, no space

# What the customer is told, by stage.
OUTCOME = {
    BkashStage.AUTHORIZED: "authorized", BkashStage.CAPTURING: "authorized",
    BkashStage.CAPTURED: "authorized", BkashStage.VOIDING: "voided",
    BkashStage.VOIDED: "voided", BkashStage.DECLINED: "declined",
    BkashStage.FAILED: "declined", BkashStage.CANCELLED: "cancelled",
    BkashStage.EXPIRED: "expired",
}


class BkashReturns:
    def __init__(self, client: Client, *, result_page_url: str | None = None) -> None:
        self._client = client
        self._result_page_url = result_page_url

    async def current(self, workflow_id: str) -> tuple[BkashStage, str | None, list[str]] | None:
        """(stage, paymentID, earlier paymentIDs) of a running or finished payment; None if unknown."""
        if not workflow_id.startswith(BKASH_WORKFLOW_PREFIX):
            return None
        return await bkash_view(self._client, workflow_id)

    def to_result_page(self, workflow_id: str, stage: BkashStage,
                       payment_id: str | None) -> Response:
        if self._result_page_url:
            query = urlencode({"payment": workflow_id, "outcome": OUTCOME.get(stage, "pending"),
                               "paymentID": payment_id or ""})
            return RedirectResponse(f"{self._result_page_url}?{query}", status_code=303)
        # Our own result page, rendered from what the workflow just answered: a redirect to
        # /bkash/result would ask the workflow again (a billable query) for the same answer.
        return result_page(workflow_id, stage, payment_id)

    async def on_return(self, request: Request) -> Response:
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
                self._client, workflow_id, ret,
                update_id=f"return-{payment_id}-{status}-{ret.signature or 'unsigned'}")
        except (WorkflowUpdateFailedError, RPCError) as err:
            if isinstance(err, RPCError) and err.status not in (RPCStatusCode.NOT_FOUND,
                                                                RPCStatusCode.INVALID_ARGUMENT):
                raise
            known = await self.current(workflow_id)
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
            return self.to_result_page(workflow_id, stage, current_id)
        if outcome.bkash_url:
            return RedirectResponse(outcome.bkash_url, status_code=303)
        return self.to_result_page(workflow_id, outcome.stage, outcome.payment_id)

    async def on_result(self, request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        known = await self.current(workflow_id)
        if known is None:
            return PlainTextResponse(f"no payment {workflow_id}", status_code=404)
        stage, payment_id, _ = known
        return result_page(workflow_id, stage, payment_id)


def result_page(workflow_id: str, stage: BkashStage, payment_id: str | None) -> HTMLResponse:
    outcome = OUTCOME.get(stage, "pending")
    return HTMLResponse(
        f"<!doctype html><title>Payment {html.escape(outcome)}</title>"
        f"<h1>Payment {html.escape(outcome)}</h1>"
        f"<p data-stage='{stage.value}' data-outcome='{outcome}'>"
        f"{html.escape(workflow_id)} · bKash paymentID {html.escape(payment_id or '-')}</p>")
