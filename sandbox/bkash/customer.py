"""A scripted bKash customer: drives the hosted page over HTTP as a browser would (reading each
page's form, posting it), then follows the redirect back to the merchant's callbackURL."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from .page import REPEAT_REDIRECT_HEADER, SANDBOX_OTP, SANDBOX_PIN

DEFAULT_WALLET = "01770618575"  # a regular sandbox wallet (reference §13)
_WRONG_PIN = "00000"


@dataclass
class CustomerJourney:
    payment_id: str
    redirect_status: str | None  # success | failure | cancel, None when the page did not redirect
    callback_url_hit: str | None  # the merchant callback URL the browser was sent to
    final_url: str
    final_status_code: int
    final_text: str
    callback_hits: int = 0


class BkashCustomer:
    """Works with any ``httpx.AsyncClient`` that can reach both the sandbox and the merchant
    (a plain client for loopback servers, or one with ``mounts`` of ASGI transports). Transport
    errors, e.g. a dropped connection injected on the page, propagate as httpx exceptions."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def approve(self, bkash_url: str, wallet: str = DEFAULT_WALLET, otp: str = SANDBOX_OTP,
                      pin: str = SANDBOX_PIN) -> CustomerJourney:
        return await self._journey(bkash_url, [("wallet", wallet), ("otp", otp), ("pin", pin)])

    async def fail_pin(self, bkash_url: str, wallet: str = DEFAULT_WALLET) -> CustomerJourney:
        return await self._journey(bkash_url, [("wallet", wallet), ("otp", SANDBOX_OTP)]
                                   + [("pin", _WRONG_PIN)] * 3)

    async def cancel(self, bkash_url: str) -> CustomerJourney:
        return await self._journey(bkash_url, [("close", None)])

    async def _journey(self, bkash_url: str, entries: list[tuple[str, str | None]]) -> CustomerJourney:
        payment_id = parse_qs(urlsplit(bkash_url).query).get("paymentId", [""])[0]
        response = await self.http.get(bkash_url, follow_redirects=True)
        for field, value in entries:
            form = _form_offering(response, field)
            if form is None:
                break  # the page did not offer this step (an error page, a finished payment)
            data = dict(form.fields)
            if value is not None:
                data[field] = value
            response = await self.http.post(urljoin(str(response.url), form.action), data=data,
                                            follow_redirects=False)
            if response.is_redirect:
                return await self._back_to_merchant(payment_id, response)
        return CustomerJourney(payment_id, None, None, str(response.url), response.status_code,
                               response.text)

    async def _back_to_merchant(self, payment_id: str, redirect: httpx.Response) -> CustomerJourney:
        callback = urljoin(str(redirect.url), redirect.headers["location"])
        # bKash appends its parameters after the merchant's own, so the last status is bKash's.
        status = parse_qs(urlsplit(callback).query).get("status", [None])[-1]
        hits = max(1, int(redirect.headers.get(REPEAT_REDIRECT_HEADER, "1")))
        for _ in range(hits):
            final = await self.http.get(callback, follow_redirects=True)
        return CustomerJourney(payment_id, status, callback, str(final.url), final.status_code,
                               final.text, callback_hits=hits)


@dataclass
class _Form:
    action: str
    fields: dict[str, str]
    controls: set[str]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._open: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = _Form(a.get("action", ""), {}, set())
            self.forms.append(self._open)
        elif tag in ("input", "button") and self._open is not None and a.get("name"):
            self._open.controls.add(a["name"])
            if tag == "input" and a.get("type") == "hidden":
                self._open.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _form_offering(response: httpx.Response, field: str) -> _Form | None:
    if "html" not in response.headers.get("content-type", ""):
        return None
    parser = _FormParser()
    parser.feed(response.text)
    return next((f for f in parser.forms if field in f.controls), None)
