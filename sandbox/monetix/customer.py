"""A scripted bKash customer for the Monetix sandbox: pays in the bKash app (Gate flow) or opens and
finishes the Payment Page, over HTTP, as a test or the demo would."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class MonetixCustomerError(RuntimeError):
    pass


class MonetixBkashCustomer:
    def __init__(self, http: httpx.AsyncClient, sandbox_url: str) -> None:
        self.http = http
        self.sandbox_url = sandbox_url.rstrip("/")

    async def pay_in_bkash(self, payment_id: str, amount: int | None = None, wallet: str | None = None,
                           project_id: int | None = None) -> str:
        """Send money to the receiver account in the payment instructions; returns the bKash
        transaction ID the customer then gives the merchant. ``amount`` (poisha) defaults to the
        requested amount; wallet 01823074817 has insufficient balance (final decline 20105)."""
        body: dict[str, Any] = {"payment_id": payment_id}
        for key, value in (("amount", amount), ("wallet", wallet), ("project_id", project_id)):
            if value is not None:
                body[key] = value
        response = await self.http.post(f"{self.sandbox_url}/sandbox/customer/pay", json=body)
        if response.status_code != 200:
            raise MonetixCustomerError(f"paying {payment_id} in bKash failed: HTTP {response.status_code} "
                                       f"{response.text}")
        return response.json()["transaction_id"]

    async def open_payment_page(self, url: str) -> httpx.Response:
        """GET the Payment Page link, as the browser would; 400 when its signature does not verify."""
        return await self.http.get(url)

    async def complete_payment_page(self, project_id: int, payment_id: str, outcome: str = "success",
                                    amount: int | None = None, code: str | None = None) -> dict:
        """Finish on the page: ``success`` pays ``amount`` (default: as requested), ``decline`` ends
        with ``code`` (default 20000). Returns ``{"status", "code", "transaction_id"}``."""
        body: dict[str, Any] = {"outcome": outcome}
        if amount is not None:
            body["amount"] = amount
        if code is not None:
            body["code"] = code
        url = f"{self.sandbox_url}/payment/{project_id}/{quote(payment_id, safe='')}/complete"
        response = await self.http.post(url, json=body)
        if response.status_code != 200:
            raise MonetixCustomerError(f"completing the Payment Page of {payment_id} failed: "
                                       f"HTTP {response.status_code} {response.text}")
        return response.json()
