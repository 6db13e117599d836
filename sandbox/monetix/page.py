"""The Payment Page (reference §5; seed "Purchase by using Payment Page"): ``GET /payment?...&signature=``
shows the bKash payment instructions; ``POST /payment/{project_id}/{payment_id}/complete`` is the
customer finishing on the page (paying and entering the transaction ID, or being declined), which
sends the page's one callback (§5.4).

The signature covers every query parameter except ``signature`` itself; ``frame_mode`` is left out
by the signer (§2.1). Values are signed as the text they arrive as, which is what
``providers.monetix.build_payment_page_url`` signs (its values are str or int, §5.2 pitfall).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import codes
from .codes import GateError
from .faults import Operation, Target
from .formats import amount_text
from .state import ActionError, MonetixSandbox, Payment, parse_project_id
from .wire import answer, error_body, read_json


class PaymentPage:
    def __init__(self, sandbox: MonetixSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [Route("/payment", self.open, methods=["GET"]),
                Route("/payment/{project_id}/{payment_id}/complete", self.complete, methods=["POST"])]

    async def open(self, request: Request) -> Response:
        self.sandbox.expire_due()
        # A repeated key keeps its last value, as a browser's form submission would.
        params = dict(request.query_params)
        request_id = self.sandbox.ids.request_id()
        try:
            p = self.sandbox.open_payment_page(params, request_id)
        except GateError as error:
            self.sandbox.reject(error)
            return _error_page(error, request_id)
        base = (self.sandbox.config.public_base_url or str(request.base_url)).rstrip("/")
        return HTMLResponse(self._render(p, base))

    async def complete(self, request: Request) -> Response:
        """JSON ``{"outcome": "success"|"decline", "amount"?, "code"?}`` from a test, or the page's own
        HTML form; answers in kind."""
        self.sandbox.expire_due()
        as_form = "form" in request.headers.get("content-type", "")
        if as_form:
            # Starlette's request.form() needs python-multipart, which the project does not ship; the
            # page's form is urlencoded, which the standard library parses (as the bKash page does).
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            amount_text_ = form.get("amount", "")
            digits = amount_text_.isascii() and amount_text_.isdigit() and len(amount_text_) <= 19
            body: dict[str, Any] | None = {"outcome": form.get("outcome"),
                                           "amount": int(amount_text_) if digits else None}
        else:
            body = await read_json(request) or {}
        project_id = parse_project_id(request.path_params["project_id"])
        payment_id = request.path_params["payment_id"]
        if project_id is None:
            return JSONResponse({"error": "project_id must be an integer"}, status_code=422)

        def refuse(error: GateError) -> Response:
            self.sandbox.reject(error)
            return JSONResponse(error_body(error, project_id=project_id, payment_id=payment_id,
                                           request_id=self.sandbox.ids.request_id()), status_code=400)

        def apply() -> Response:
            try:
                result = self.sandbox.complete_payment_page(project_id, payment_id, body.get("outcome"),
                                                            body.get("amount"), body.get("code"))
            except ActionError as error:
                return JSONResponse({"error": str(error)}, status_code=error.status)
            if as_form:
                return HTMLResponse(_page("Payment finished", f"<p>Payment {html.escape(payment_id)}: "
                                          f"<strong id='result'>{html.escape(result['status'])}</strong></p>"))
            return JSONResponse(result)

        return await answer(self.sandbox, Operation.PAYMENT_PAGE, Target(project_id, payment_id), apply, refuse)

    def _render(self, p: Payment, base: str) -> str:
        e = html.escape
        amount = f"{amount_text(p.amount)} BDT"
        receiver = self.sandbox.config.receiver_account
        if p.status.final:
            body = (f"<p>Payment <code>{e(p.payment_id)}</code> ended: "
                    f"<strong id='result'>{e(p.status.value)}</strong> ({e(p.code)} {e(p.message)}).</p>")
            return _page("bKash payment", body)
        action = f"{base}/payment/{p.project_id}/{quote(p.payment_id, safe='')}/complete"
        body = (
            f"<p>Payment <code id='payment-id'>{e(p.payment_id)}</code>, "
            f"status <span id='status'>{e(p.status.value)}</span></p>"
            "<ol>"
            "<li>Open the bKash app and choose <em>Send Money</em>.</li>"
            f"<li>Send <strong id='amount'>{e(amount)}</strong> to the bKash account "
            f"<strong id='account-number'>{e(receiver)}</strong>.</li>"
            "<li>Enter the transaction ID bKash sends you.</li>"
            "</ol>"
            f"<form method='post' action='{e(action)}'>"
            "<label>Transaction ID <input name='transaction_id'></label> "
            "<label>Amount paid (poisha, blank = as requested) <input name='amount'></label> "
            "<button name='outcome' value='success'>I have paid</button> "
            "<button name='outcome' value='decline'>Decline</button>"
            "</form>"
        )
        return _page("bKash payment", body)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _error_page(error: GateError, request_id: str) -> HTMLResponse:
    e = html.escape
    details = "".join(f"<li>{e(item.get('field', ''))} {e(item['message'])}</li>" for item in error.errors())
    body = (f"<p id='error'>Error <code id='code'>{e(error.code)}</code>: {e(codes.message(error.code))}</p>"
            f"<ul>{details}</ul><p>request {e(request_id)}</p>")
    return HTMLResponse(_page("Payment cannot be opened", body), status_code=400)

