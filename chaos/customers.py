"""The chaos run's bKash customer: the sandbox's scripted customer (sandbox/bkash/customer.py) with
what a person in a browser does besides.

- The shop's return page answers "we are confirming your payment" (503 with a refresh, Temporal
  restarting) or does not answer at all (the endpoint restarting): the browser asks again, as the
  page's refresh or a reload does, for as long as the customer is patient (the approval window).
- The shop sends the customer to a new bKash page (an execute lost before bKash applied it: bKash
  needs a new payment, and the workflow's answer to the return redirects there): the customer
  approves again, at most once per payment the workflow may create.

Without this, a customer who approved would be counted as having approved and then abandoned the
payment, which no customer in front of a "please approve" page does.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from sandbox.bkash.customer import DEFAULT_WALLET, BkashCustomer, CustomerJourney
from sandbox.bkash.page import REPEAT_REDIRECT_HEADER


class PatientBkashCustomer(BkashCustomer):
    def __init__(self, http: httpx.AsyncClient, *, patience: float, max_pages: int = 3) -> None:
        super().__init__(http)
        self.patience, self.max_pages = patience, max_pages

    async def approve_every_page(self, bkash_url: str,
                                 wallet: str = DEFAULT_WALLET) -> list[CustomerJourney]:
        """Approve, and approve again each new bKash page the shop sends the browser to."""
        journeys: list[CustomerJourney] = []
        for _ in range(self.max_pages):
            journey = await self.approve(bkash_url, wallet=wallet)
            journeys.append(journey)
            new_page = _new_bkash_page(journey, bkash_url)
            if new_page is None:
                break
            bkash_url = new_page
        return journeys

    async def _back_to_merchant(self, payment_id: str, redirect: httpx.Response) -> CustomerJourney:
        callback = urljoin(str(redirect.url), redirect.headers["location"])
        status = parse_qs(urlsplit(callback).query).get("status", [None])[-1]
        hits = max(1, int(redirect.headers.get(REPEAT_REDIRECT_HEADER, "1")))
        for _ in range(hits):
            final = await self._patiently(callback)
        return CustomerJourney(payment_id, status, callback, str(final.url), final.status_code,
                               final.text, callback_hits=hits)

    async def _patiently(self, url: str) -> httpx.Response:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                response = await self.http.get(url, follow_redirects=True)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)  # the page did not load: reload it
                continue
            retry_after = response.headers.get("retry-after")
            if response.status_code != 503 or retry_after is None or time.monotonic() > deadline:
                return response
            await asyncio.sleep(min(float(retry_after), 5.0))  # the page's own refresh


def _new_bkash_page(journey: CustomerJourney, approved_url: str) -> str | None:
    """The bKash page of another payment the browser ended on, if it asks for a wallet."""
    final = urlsplit(journey.final_url)
    if not final.path.endswith("/checkout/") or 'name="wallet"' not in journey.final_text:
        return None
    new_id = parse_qs(final.query).get("paymentId", [""])[0]
    old_id = parse_qs(urlsplit(approved_url).query).get("paymentId", [""])[0]
    return journey.final_url if new_id and new_id != old_id else None
