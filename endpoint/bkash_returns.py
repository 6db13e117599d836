"""The customer's browser returning from bKash's page → a ``customer_returned`` update of the
payment's workflow, and the result page that shows what bKash confirmed, not what the URL claimed.

Both are result links of one payment: ``/bkash/return/<workflow id>/<token>`` (the callbackURL the
create_payment activity gives bKash) and ``/bkash/result/<workflow id>/<token>``, the token being
``contracts.bkash.return_link_token`` under PAYMENTS_LINK_SECRET. No token, a wrong one, an unknown
or foreign workflow id and junk all get one fixed answer before Temporal is asked anything: an
outsider learns nothing (not even whether an invoice exists) and costs nothing in Temporal.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from contracts.bkash import (
    BkashStage,
    BkashView,
    BrowserReturn,
    BrowserReturnStatus,
    SignatureRule,
    is_bkash_workflow_id,
    is_return_link_token,
    return_link_token,
    workflow_id_for_invoice,
)
from contracts.money import format_bdt
from endpoint.metrics import METRICS
from endpoint.common import _reason, log, refused
from merchant_client import bkash_view, send_customer_return

# Every bKash payment's workflow id, hence every callbackURL this endpoint hands out, has this prefix
# ("bkash@<account>:" for a merchant account other than the default); any other id (a Monetix
# purchase, another application's workflow) is no bKash payment.
BKASH_WORKFLOW_PREFIX = workflow_id_for_invoice("")
# "bkash@<account of ≤ 32>:" + an invoice of at most 255 characters (bKash's rule, §4.1).
_MAX_WORKFLOW_ID = len("bkash@:") + 32 + 255
# A paymentID is "TR" + mode + alphanumerics + epoch ms and the redirect signature 10 alphanumerics
# (reference §4.2-4.3). The bound is generous on purpose: it only keeps junk out of update ids (at most
# 1000 characters in Temporal), logs and answers, it does not second-guess bKash's format.
_MAX_RETURN_VALUE = 128
# The refusal log's kind (endpoint/common.py: counted, one line a minute, not a line per request).
KIND = "bkash returns"
# How long the "we are confirming your payment" page waits before it asks again.
RETRY_AFTER_SECONDS = 5
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

# The one answer to anything that is not a payment's result link. It must not depend on whether
# the payment exists, so it cannot say more than this; a customer whose payment was created before
# result links had tokens lands here too (see ResultLinks.workflow_id), hence the second sentence.
_NOT_A_LINK = ("<!doctype html><meta charset='utf-8'><title>Payment link not valid</title>"
               "<h1>This payment link is not valid</h1><p>If you have just approved a payment in "
               "bKash, it is being confirmed with bKash and the shop will tell you the outcome; "
               "nothing is charged twice.</p>")


def _now() -> datetime:
    return datetime.now(UTC)


class ResultLinks:
    """The link secrets the endpoint accepts: the current one, and during a rotation the previous
    one until ``previous_until`` (links already handed to bKash and customers carry it)."""

    def __init__(self, secret: bytes, *, previous: bytes | None = None,
                 previous_until: datetime | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        if previous is not None and previous_until is None:
            raise ValueError("a previous link secret needs the instant it stops being accepted")
        self._secret, self._previous, self._until, self._clock = \
            secret, previous, previous_until, clock

    @classmethod
    def from_settings(cls, settings) -> ResultLinks:
        """From config.EndpointSettings: PAYMENTS_LINK_SECRET[_PREVIOUS[_UNTIL]]."""
        previous = settings.link_secret_previous
        return cls(settings.link_secret.get_secret_value().encode(),
                   previous=previous.get_secret_value().encode() if previous else None,
                   previous_until=settings.link_secret_previous_until)

    def token(self, workflow_id: str) -> str:
        return return_link_token(self._secret, workflow_id)

    def workflow_id(self, link: str) -> str | None:
        """The workflow id of ``<workflow id>/<token>`` when the token is that payment's, else None.

        A payment created before links had tokens was given a callbackURL without one, and its
        return is refused here like any other: telling it apart from an outsider's guess would need
        Temporal. Nothing is lost: its approval window ends with the one execute, which authorizes
        an approved payment (closed-tab path), and the refusal page says the payment is being
        confirmed.
        """
        workflow_id, _, token = link.rpartition("/")
        if not is_bkash_workflow_id(workflow_id) or len(workflow_id) > _MAX_WORKFLOW_ID:
            return None
        if is_return_link_token(token, self._secret, workflow_id):
            return workflow_id
        if self._previous is not None and self._until is not None and self._clock() < self._until \
                and is_return_link_token(token, self._previous, workflow_id):
            return workflow_id
        return None


class BkashReturns:
    def __init__(self, client: Client, *, result_page_url: str | None = None,
                 links: ResultLinks | None = None,
                 signature_rule: SignatureRule = SignatureRule.ADVISORY) -> None:
        self._client = client
        self._result_page_url = result_page_url
        self._links = links
        self._signature_rule = signature_rule
        if links is None:
            log.warning("no link secret: every bKash return and result page is refused (set "
                        "PAYMENTS_LINK_SECRET, the same as the worker's)")

    def _workflow_id(self, request: Request) -> str | None:
        return self._links.workflow_id(request.path_params["workflow_id"]) if self._links else None

    async def current(self, workflow_id: str) -> BkashView | None:
        """Stage, amount and paymentIDs of a running or finished payment; None if unknown."""
        if not is_bkash_workflow_id(workflow_id):
            return None
        return await bkash_view(self._client, workflow_id)

    def result_path(self, workflow_id: str) -> str:
        assert self._links is not None
        return f"/bkash/result/{quote(workflow_id, safe='')}/{self._links.token(workflow_id)}"

    def to_result_page(self, workflow_id: str, stage: BkashStage, payment_id: str | None,
                       amount_poisha: int | None) -> Response:
        if self._result_page_url:
            query = urlencode({"payment": workflow_id, "outcome": OUTCOME.get(stage, "pending"),
                               "amount": format_bdt(amount_poisha) if amount_poisha else "",
                               "paymentID": payment_id or ""})
            return RedirectResponse(f"{self._result_page_url}?{query}", status_code=303)
        # Our own result page, rendered from what the workflow just answered: a redirect to
        # /bkash/result would ask the workflow again (a billable query) for the same answer.
        return result_page(workflow_id, stage, payment_id, amount_poisha,
                           check_again=self.result_path(workflow_id))

    async def on_return(self, request: Request) -> Response:
        workflow_id = self._workflow_id(request)
        if workflow_id is None:
            return not_a_link()
        params = request.query_params
        payment_id, status = params.get("paymentID"), params.get("status")
        signature = params.get("signature") or None
        if not payment_id:
            return _bad("paymentID is missing from the bKash return")
        if not _printable(payment_id):
            return _bad("paymentID is not a bKash paymentID (printable ASCII, at most 128 "
                        "characters)")
        if status not in {s.value for s in BrowserReturnStatus}:
            return _bad("status must be success, failure or cancel")
        if signature is not None and not _printable(signature):
            return _bad("signature is not a bKash redirect signature (printable ASCII, at most 128 "
                        "characters)")
        ret = BrowserReturn(payment_id=payment_id, status=BrowserReturnStatus(status),
                            signature=signature, signature_rule=self._signature_rule)
        try:
            # Each return is its own update: a reload or a forged return is absorbed by the
            # workflow (it joins the return being handled), and a return after one answered
            # "bKash has not seen the approval" is news, not a duplicate (workflows/bkash_returns).
            outcome = await send_customer_return(
                self._client, workflow_id, ret,
                update_id=f"return-{payment_id}-{status}-{uuid.uuid4().hex}")
        except WorkflowUpdateFailedError as err:
            return await self._refused_return(workflow_id, payment_id, status, err)
        except (RPCError, RuntimeError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            if _unavailable(err):
                return self._confirming(workflow_id, err)
            if isinstance(err, RPCError) and err.status in (RPCStatusCode.NOT_FOUND,
                                                            RPCStatusCode.INVALID_ARGUMENT):
                return await self._refused_return(workflow_id, payment_id, status, err)
            raise
        METRICS.count(KIND, "accepted")
        if outcome.bkash_url:
            return RedirectResponse(outcome.bkash_url, status_code=303)
        return self.to_result_page(workflow_id, outcome.stage, outcome.payment_id,
                                   outcome.amount_poisha)

    async def _refused_return(self, workflow_id: str, payment_id: str, status: str,
                              err: Exception) -> Response:
        try:
            known = await self.current(workflow_id)
        except (RPCError, RuntimeError) as again:
            if _unavailable(again):
                return self._confirming(workflow_id, again)
            raise
        if known is None:
            return not_a_link()  # a valid link of a payment Temporal no longer (or never) knew
        if payment_id != known.payment_id and payment_id not in known.previous_payment_ids:
            # A holder of the link only (its token): rare enough for a line of its own.
            log.warning("bKash return for %s carried a foreign paymentID; ignored", workflow_id)
            return PlainTextResponse(f"paymentID {payment_id} does not belong to payment "
                                     f"{workflow_id}", status_code=409)
        if payment_id != known.payment_id and known.stage is BkashStage.AWAITING_APPROVAL \
                and known.bkash_url:
            # The return of a payment replaced after its execute was lost (re-sent by the
            # "confirming" page's reload, or after the endpoint restarted): the customer must
            # approve the new one, so send the browser there rather than to a pending page.
            METRICS.count(KIND, "duplicate", "replaced payment")
            return RedirectResponse(known.bkash_url, status_code=303)
        # A repeated or late return of this payment, or one whose claim the workflow refused:
        # nothing changed; show where it really stands.
        METRICS.count(KIND, "duplicate")
        log.log(logging.WARNING if isinstance(err, WorkflowUpdateFailedError) else logging.INFO,
                "bKash return for %s (status=%s) refused by the payment at %s: %s",
                workflow_id, status, known.stage.value, _reason(err))
        return self.to_result_page(workflow_id, known.stage, known.payment_id, known.amount_poisha)

    async def on_result(self, request: Request) -> Response:
        workflow_id = self._workflow_id(request)
        if workflow_id is None:
            return not_a_link()
        try:
            known = await self.current(workflow_id)
        except (RPCError, RuntimeError) as err:
            if _unavailable(err):
                return self._confirming(workflow_id, err)
            raise
        if known is None:
            return not_a_link()
        return result_page(workflow_id, known.stage, known.payment_id, known.amount_poisha,
                           check_again=self.result_path(workflow_id))

    def _confirming(self, workflow_id: str, err: Exception) -> Response:
        """Temporal cannot be asked now (a server restart): the return is not lost, the browser
        asks again by itself, and the approval window's execute resolves the payment anyway."""
        METRICS.count(KIND, "unavailable")
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        log.warning("bKash return or result page for %s: Temporal unavailable (%s); the page "
                    "retries in %d s", workflow_id, first_line, RETRY_AFTER_SECONDS)
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'>"
            f"<meta http-equiv='refresh' content='{RETRY_AFTER_SECONDS}'>"
            "<title>Confirming your payment</title><h1>We are confirming your payment</h1>"
            "<p>This takes a moment longer than usual. This page checks again by itself in "
            f"{RETRY_AFTER_SECONDS} seconds; please keep it open. Nothing is charged twice.</p>",
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})


def not_a_link() -> HTMLResponse:
    refused(KIND, "not a result link")
    return HTMLResponse(_NOT_A_LINK, status_code=404, headers={"Cache-Control": "no-store"})


def _bad(message: str) -> PlainTextResponse:
    refused(KIND, "malformed return")
    return PlainTextResponse(message, status_code=400)


def _printable(value: str) -> bool:
    return 0 < len(value) <= _MAX_RETURN_VALUE and all("!" <= c <= "~" for c in value)


def _unavailable(err: Exception) -> bool:
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return True
    if isinstance(err, RPCError):
        return err.status in _TEMPORAL_UNAVAILABLE
    # A lazily connected client that cannot reach Temporal raises a plain RuntimeError.
    return type(err) is RuntimeError


def result_page(workflow_id: str, stage: BkashStage, payment_id: str | None,
                amount_poisha: int | None = None, *,
                check_again: str | None = None) -> HTMLResponse:
    outcome = OUTCOME.get(stage, "pending")
    amount = f"{format_bdt(amount_poisha)} BDT" if amount_poisha else "-"
    again = (f"<p><a href='{html.escape(check_again)}'>Check again</a></p>"
             if check_again and outcome == "pending" else "")
    return HTMLResponse(
        f"<!doctype html><meta charset='utf-8'><title>Payment {html.escape(outcome)}</title>"
        f"<h1>Payment {html.escape(outcome)}</h1>"
        f"<p data-stage='{html.escape(stage.value)}' data-outcome='{html.escape(outcome)}' "
        f"data-amount='{html.escape(amount)}'>Amount: {html.escape(amount)}</p>"
        f"<p>{html.escape(workflow_id)} · bKash paymentID {html.escape(payment_id or '-')}</p>"
        f"{again}", headers={"Cache-Control": "no-store"})
