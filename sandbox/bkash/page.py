"""The hosted payment page behind bkashURL: wallet number, OTP, PIN, then the browser goes back to
the merchant's callbackURL (reference §5, seed "Steps to be Performed by the Customer").

Plain HTML forms, so a test drives it over HTTP like a browser (see customer.py). Every form posts
to a URL relative to the page, so the page works behind any base URL.
"""

from __future__ import annotations

import hashlib
import html
import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.common.wire import failure_after_commit, failure_before_commit

from .faults import PAGE_KINDS, FaultKind, Operation, Target
from .state import BkashSandbox, PageOutcome, Payment
from .wire import DROPPED_BODY

# Sandbox credentials of §13: any 01XXXXXXXXX wallet, OTP 123456, PIN 12121.
SANDBOX_OTP = "123456"
SANDBOX_PIN = "12121"
ATTEMPTS = 3
_WALLET = re.compile(r"^01\d{9}$")
REPEAT_REDIRECT_HEADER = "X-Sandbox-Repeat-Redirect"


class HostedPage:
    def __init__(self, sandbox: BkashSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/checkout/", self.landing, methods=["GET"]),
                Route("/checkout/{payment_id}/wallet", self.wallet, methods=["POST"]),
                Route("/checkout/{payment_id}/otp", self.otp, methods=["POST"]),
                Route("/checkout/{payment_id}/pin", self.pin, methods=["POST"]),
                Route("/checkout/{payment_id}/cancel", self.cancel, methods=["POST"])]

    async def landing(self, request: Request) -> Response:
        p = self.sandbox.find(request.query_params.get("paymentId"))
        if p is None or request.query_params.get("hash") != p.page_hash:
            return _not_found()
        return self._render(p, action_prefix=f"{p.payment_id}/")

    async def wallet(self, request: Request) -> Response:
        p, form, refused = await self._at_step(request, "wallet")
        if refused:
            return refused
        wallet = form.get("wallet", "").strip()
        if not _WALLET.match(wallet):
            return self._render(p, error="Please enter a valid 11-digit bKash account number (01XXXXXXXXX).")
        p.wallet, p.page_step = wallet, "otp"
        return self._render(p, note=f"A verification code has been sent to {wallet[:3]}******{wallet[-2:]}.")

    async def otp(self, request: Request) -> Response:
        p, form, refused = await self._at_step(request, "otp")
        if refused:
            return refused
        if form.get("otp", "").strip() != SANDBOX_OTP:
            p.otp_failures += 1
            if p.otp_failures >= ATTEMPTS:
                return await self._finish(p, PageOutcome.FAILURE)
            return self._render(p, error=f"Invalid verification code. {ATTEMPTS - p.otp_failures} attempt(s) left.")
        p.page_step = "pin"
        return self._render(p)

    async def pin(self, request: Request) -> Response:
        p, form, refused = await self._at_step(request, "pin")
        if refused:
            return refused
        if form.get("pin", "").strip() != SANDBOX_PIN:
            p.pin_failures += 1
            if p.pin_failures >= ATTEMPTS:
                return await self._finish(p, PageOutcome.FAILURE)
            return self._render(p, error=f"Wrong PIN. {ATTEMPTS - p.pin_failures} attempt(s) left.")
        return await self._finish(p, PageOutcome.SUCCESS)

    async def cancel(self, request: Request) -> Response:
        p, _, refused = await self._at_step(request, None)
        if refused:
            return refused
        return await self._finish(p, PageOutcome.CANCEL)

    async def _at_step(self, request: Request,
                       step: str | None) -> tuple[Payment, dict[str, str], Response | None]:
        """The payment and the posted form, plus the page to answer instead when the post is out
        of turn (unknown payment, finished page, another step pending)."""
        p = self.sandbox.find(request.path_params["payment_id"])
        if p is None:
            return p, {}, _not_found()  # type: ignore[return-value]
        # Starlette's request.form() needs python-multipart, which the project does not ship;
        # the page's forms are urlencoded, which the standard library parses.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        if p.page_step == "done":
            return p, form, self._render(p)
        if step is not None and p.page_step != step:
            return p, form, self._render(p, error="Please complete the current step first.", status=409)
        return p, form, None

    async def _finish(self, p: Payment, outcome: PageOutcome) -> Response:
        """The customer's verdict, then the browser's trip back to the merchant (§5)."""
        fault = self.sandbox.faults.take(Operation.PAGE, Target(p.payment_id, p.merchant_invoice), PAGE_KINDS)
        if fault is not None and fault.kind in (FaultKind.HTTP_ERROR, FaultKind.DROP_CONNECTION) \
                and not fault.spec.commit:
            return failure_before_commit(fault, DROPPED_BODY)
        self.sandbox.end_on_page(p, outcome)
        if fault is not None and fault.kind is FaultKind.NO_REDIRECT:
            # The customer closes the tab: the payment is decided but no callback arrives (§5).
            return self._render(p)
        # The redirect carries apiVersion=1.2.0-beta/ on top of the create response's URLs (§5).
        api_version = self.sandbox.config.api_version.removeprefix("v")
        callback = p.callback_with(outcome.value)
        if self.sandbox.config.redirect_signature == "different":
            callback = callback.replace(f"&signature={p.signature}",
                                        f"&signature={_other_signature(p)}")
        response = RedirectResponse(f"{callback}&apiVersion={api_version}/", status_code=302)
        if fault is None:
            return response
        if fault.kind is FaultKind.REPEAT_REDIRECT:
            # A customer reloading the return page (§5): the customer driver replays the callback.
            response.headers[REPEAT_REDIRECT_HEADER] = "2"
            return response
        return await failure_after_commit(fault, response)

    def _render(self, p: Payment, *, action_prefix: str = "", error: str | None = None,
                note: str | None = None, status: int = 200) -> HTMLResponse:
        parts = []
        if error:
            parts.append(f'<p class="error" role="alert">{html.escape(error)}</p>')
        if note:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
        if p.page_step == "done":
            parts.append(_DONE_TEXT[p.page_outcome])
        else:
            parts.append(_STEP_FORMS[p.page_step].format(prefix=action_prefix))
            parts.append(f'<form method="post" action="{action_prefix}cancel">'
                         '<button type="submit" name="close" value="1">Close</button></form>')
        return HTMLResponse(_layout(p, "\n".join(parts)), status_code=status)


_STEP_FORMS = {
    "wallet": ('<form method="post" action="{prefix}wallet">'
               '<label>Your bKash account number <input name="wallet" inputmode="numeric" '
               'maxlength="11" placeholder="e.g 01XXXXXXXXX" autocomplete="off"></label>'
               '<p><small>By clicking on Confirm, you are agreeing to the terms &amp; conditions.'
               '</small></p><button type="submit">Confirm</button></form>'),
    "otp": ('<form method="post" action="{prefix}otp">'
            '<label>Enter verification code <input name="otp" inputmode="numeric" maxlength="6" '
            'autocomplete="one-time-code"></label><button type="submit">Confirm</button></form>'),
    "pin": ('<form method="post" action="{prefix}pin">'
            '<label>Enter PIN of your bKash account <input name="pin" type="password" '
            'inputmode="numeric" maxlength="5"></label><button type="submit">Confirm</button></form>'),
}

_DONE_TEXT = {
    PageOutcome.SUCCESS: '<p class="outcome" data-outcome="success">Payment approved. You may close this tab.</p>',
    PageOutcome.FAILURE: '<p class="outcome" data-outcome="failure">Payment failed. You may close this tab.</p>',
    PageOutcome.CANCEL: '<p class="outcome" data-outcome="cancel">Payment cancelled. You may close this tab.</p>',
}


def _layout(p: Payment, body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>bKash Sandbox Checkout</title></head><body><main>"
            "<h1>bKash Sandbox Checkout</h1>"
            f"<p class=\"invoice\">Invoice {html.escape(p.merchant_invoice)} &middot; "
            f"{html.escape(p.amount)} {html.escape(p.currency)}</p>\n{body}\n</main></body></html>")


def _other_signature(p: Payment) -> str:
    """A redirect signature fixed per payment and never the create answer's (same shape: 10
    alphanumerics)."""
    other = hashlib.sha256(f"redirect|{p.payment_id}|{p.signature}".encode()).hexdigest()[:10]
    return other if other != p.signature else other[::-1].upper()


def _not_found() -> HTMLResponse:
    return HTMLResponse("<!doctype html>\n<html><body><h1>This payment link is not valid.</h1></body></html>",
                        status_code=404)
