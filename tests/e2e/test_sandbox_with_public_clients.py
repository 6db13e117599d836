"""The bKash sandbox agrees with real clients: two public bKash clients from PyPI, unchanged
(``pybkash`` 0.4.2 and ``bkash-pgw-tokenized`` 1.0.0, test-only dependencies), drive it over
loopback HTTP through every operation they offer: grant, refresh, create, the hosted page (the
scripted customer), execute, query, search, refund and refund status.

Pointing them at the sandbox, as read in each package's source:
- pybkash has no base-URL setting. ``Token``/``AsyncToken`` keep the host in the attribute
  ``base_url`` (``https://tokenized.pay.bka.sh/v1.2.0-beta``, or ``.sandbox.`` with
  ``sandbox=True``); the grant posts to ``f"{self.base_url}/tokenized/checkout/token/grant"`` and
  ``Client``/``AsyncClient`` build their httpx client with ``base_url=token.base_url`` when they are
  constructed. A subclass sets that attribute to the loopback sandbox in ``__init__``, before any
  client exists. Without ``redis_url`` it caches the token in memory (no Redis is contacted).
- bkash-pgw-tokenized documents a ``"base_url"`` config key ("overrides the default host for that
  mode"); every call is ``f"{base}/{path}"`` on a fresh httpx client.
Neither package offers refund status (pybkash: no such method; bkash-pgw-tokenized: only
``refund``); it is sent through bkash-pgw-tokenized's own request helper with its own headers, the
v1 body {paymentID, trxID} on the refund URL (bkash-api.md §2 #10). Neither offers capture/void.

No real bKash host is ever tried: every name resolution of these tests goes through
``socket.getaddrinfo`` (asyncio's resolver for httpx's async transport, ``socket.create_connection``
for its sync one), and a guard refuses any name but loopback and fails the test if one was asked.
The first test shows the guard catching the packages' defaults.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx
import pybkash
import pytest
from bkash_pgw_tokenized import (BKASH_TOKENIZED_LIVE_BASE_URL, BKASH_TOKENIZED_SANDBOX_BASE_URL, Bkash,
                                 MemoryTokenStore, ensure_id_token, is_success_status_code)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from embedded import serve_asgi
from sandbox.bkash import BkashSandboxConfig, create_app
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer

CONFIG = BkashSandboxConfig()
CREDENTIALS = {"username": CONFIG.username, "password": CONFIG.password,
               "app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret}
VERSION = "v1.2.0-beta"
WALLET = "01770618575"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


# --- no host but loopback -----------------------------------------------------------------------


@pytest.fixture
def resolver_guard(monkeypatch):
    """Names the test tried to resolve other than loopback; each such lookup fails at once."""
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            asked.append(name)
            raise socket.gaierror(f"{name!r} refused: these tests reach only the loopback sandbox")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    return asked


@pytest.fixture
def no_real_bkash(resolver_guard):
    yield
    assert resolver_guard == [], f"a client tried to reach {resolver_guard}"


class LoopbackToken(pybkash.Token):
    """pybkash's sync token manager with its base URL on the loopback sandbox (see the module
    docstring: the attribute is the package's only hook, read by Client at construction)."""

    def __init__(self, base_url: str, **credentials: str) -> None:
        super().__init__(sandbox=True, **credentials)
        self.base_url = base_url


class LoopbackAsyncToken(pybkash.AsyncToken):
    def __init__(self, base_url: str, **credentials: str) -> None:
        super().__init__(sandbox=True, **credentials)
        self.base_url = base_url


def pgw_client(api_base: str) -> Bkash:
    return Bkash({**CREDENTIALS, "sandbox": True, "base_url": api_base}, timeout=10)


async def test_the_packages_default_to_real_bkash_hosts_which_the_guard_refuses(resolver_guard):
    # What the sources say the defaults are, so the loopback settings below are not a no-op.
    assert pybkash.Token(**CREDENTIALS).base_url == "https://tokenized.pay.bka.sh/v1.2.0-beta"
    assert pybkash.Token(**CREDENTIALS, sandbox=True).base_url == \
        "https://tokenized.sandbox.bka.sh/v1.2.0-beta"
    assert (BKASH_TOKENIZED_SANDBOX_BASE_URL, BKASH_TOKENIZED_LIVE_BASE_URL) == (
        "https://tokenized.sandbox.bka.sh/v1.2.0-beta", "https://tokenized.pay.bka.sh/v1.2.0-beta")
    # Unconfigured, each would go to bKash: the guard stops it before any packet leaves.
    with pytest.raises(httpx.ConnectError):
        await Bkash({**CREDENTIALS, "sandbox": True}).grant_token()
    async with pybkash.AsyncClient(pybkash.AsyncToken(**CREDENTIALS, sandbox=True)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.query_payment("TR0011x")
    assert resolver_guard == ["tokenized.sandbox.bka.sh", "tokenized.sandbox.bka.sh"]


# --- the loopback sandbox and merchant ----------------------------------------------------------


@dataclass
class Loopback:
    api_base: str  # what the clients are given: {sandbox}/v1.2.0-beta
    callback_url: str
    returns: list[str]  # every browser return the merchant received
    customer: BkashCustomer
    admin: BkashSandboxAdmin

    def invoice(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def loopback(no_real_bkash):
    """A fresh sandbox per test (its own two-token-calls-an-hour budget) and a merchant that
    records the customer's return, both served by uvicorn on 127.0.0.1."""
    returns: list[str] = []

    async def callback(request: Request) -> PlainTextResponse:
        returns.append(str(request.url))
        return PlainTextResponse("thank you")

    merchant = Starlette(routes=[Route("/bkash/callback", callback)])
    async with serve_asgi(create_app(CONFIG)) as sandbox_url, serve_asgi(merchant) as merchant_url, \
            httpx.AsyncClient(timeout=10) as browser:
        assert sandbox_url.startswith("http://127.0.0.1:")
        yield Loopback(f"{sandbox_url}/{VERSION}", f"{merchant_url}/bkash/callback", returns,
                       BkashCustomer(browser), BkashSandboxAdmin(sandbox_url, browser))


async def approve(lb: Loopback, bkash_url: str) -> None:
    journey = await lb.customer.approve(bkash_url, wallet=WALLET)
    assert journey.redirect_status == "success" and journey.final_status_code == 200
    assert lb.returns[-1] == journey.callback_url_hit


# --- pybkash ------------------------------------------------------------------------------------


async def test_pybkash_async_client_pays_queries_searches_and_refunds(loopback: Loopback):
    token = LoopbackAsyncToken(loopback.api_base, **CREDENTIALS)
    invoice = loopback.invoice("PYB")
    async with pybkash.AsyncClient(token) as client:
        # amount as pybkash sends it: the JSON number 500, not "500".
        payment = await client.create_payment(callback_url=loopback.callback_url,
                                              payer_reference=WALLET, amount=500,
                                              invoice_number=invoice)
        assert payment.status_code == "0000"
        assert payment.bkash_url.startswith(loopback.api_base.removesuffix(f"/{VERSION}"))
        await approve(loopback, payment.bkash_url)

        execution = await client.execute_payment(payment.payment_id)
        assert execution.is_complete() and execution.amount == "500"
        assert (execution.merchant_invoice_number, execution.customer_msisdn) == (invoice, WALLET)

        queried = await client.query_payment(payment.payment_id)
        assert queried.is_complete() and queried.merchant_invoice == invoice

        found = await client.search_trx(execution.trx_id)  # needs payerAccount
        assert found.is_complete() and (found.payer_account, found.amount) == (WALLET, "500")
        assert (found.payer_type, found.max_refundable_amount) == ("Customer", "500")

        refund = await client.execute_refund(payment_id=payment.payment_id, trx_id=execution.trx_id,
                                             refund_amount=120.5, sku="room-12", reason="late checkout")
        assert refund.is_complete() and (refund.original_trx_id, refund.amount) == (
            execution.trx_id, "120.5")
        reversal = await client.search_trx(refund.refund_trx_id)
        assert reversal.is_complete() and reversal.original_trx_amount == "500"
        assert (await client.search_trx(execution.trx_id)).max_refundable_amount == "379.50"

        # Agreements are outside Auth & Capture: refused for the mode, as the sandbox intends.
        with pytest.raises(pybkash.APIError) as refused:
            await client.create_agreement(callback_url=loopback.callback_url, payer_reference=WALLET)
        assert refused.value.status_code == "2063"

    ledger = await loopback.admin.ledger(invoice=invoice)
    assert [(e["kind"], e["amount_poisha"]) for e in ledger] == [("SALE", 50000), ("REFUND", 12050)]
    calls = await loopback.admin.calls()
    assert {op: n for op, n in calls.items() if n} == {
        "grant": 1, "create": 2, "execute": 1, "query": 1, "search": 3, "refund": 1}


async def test_pybkash_sync_client_pays_in_a_thread(loopback: Loopback):
    # The sync client blocks; run it off the loop that serves the sandbox.
    client = pybkash.Client(LoopbackToken(loopback.api_base, **CREDENTIALS))
    invoice = loopback.invoice("PYS")
    try:
        payment = await asyncio.to_thread(
            client.create_payment, callback_url=loopback.callback_url, payer_reference=WALLET,
            amount=250.75, invoice_number=invoice)
        await approve(loopback, payment.bkash_url)
        execution = await asyncio.to_thread(client.execute_payment, payment.payment_id)
        assert execution.is_complete() and execution.amount == "250.75"
        assert (await asyncio.to_thread(client.query_payment, payment.payment_id)).is_complete()
        found = await asyncio.to_thread(client.search_trx, execution.trx_id)
        assert found.payer_account == WALLET
        refund = await asyncio.to_thread(client.execute_refund, payment.payment_id,
                                         execution.trx_id, 250.75)
        assert refund.is_complete() and refund.amount == "250.75"
    finally:
        client.close()
    ledger = await loopback.admin.ledger(invoice=invoice)
    assert [(e["kind"], e["amount_poisha"]) for e in ledger] == [("SALE", 25075), ("REFUND", 25075)]


# --- bkash-pgw-tokenized ------------------------------------------------------------------------


async def test_pgw_client_grants_refreshes_pays_searches_refunds_and_asks_refund_status(
        loopback: Loopback):
    client = pgw_client(loopback.api_base)
    store = MemoryTokenStore()
    granted = await ensure_id_token(store, client)
    # An id_token at its end makes ensure_id_token use the refresh token, as the package does.
    state = await store.load()
    await store.save(replace(state, id_token_expires_at=datetime.now(UTC)))
    token = await ensure_id_token(store, client)
    assert token != granted and (await store.load()).refresh_token == state.refresh_token
    stats = await loopback.admin.stats()
    assert (stats["grant_calls"], stats["refresh_calls"]) == (1, 1)

    # Auth & Capture's first half: authorize (capture/void are not in this package).
    auth_invoice = loopback.invoice("PGA")
    created = await client.create_payment(
        token, mode="0011", payer_reference=WALLET, callback_url=loopback.callback_url,
        amount="300.00", currency="BDT", intent="authorization", merchant_invoice_number=auth_invoice)
    assert is_success_status_code(created["statusCode"])
    await approve(loopback, created["bkashURL"])
    authorized = await client.execute_payment(token, created["paymentID"])
    assert (authorized["statusCode"], authorized["transactionStatus"]) == ("0000", "Authorized")
    status = await client.payment_status(token, created["paymentID"])
    assert status["transactionStatus"] == "Authorized"

    # A sale, then search, refund and refund status.
    invoice = loopback.invoice("PGS")
    sale = await client.create_payment(
        token, mode="0011", payer_reference=WALLET, callback_url=loopback.callback_url,
        amount="100.00", currency="BDT", intent="sale", merchant_invoice_number=invoice)
    await approve(loopback, sale["bkashURL"])
    executed = await client.execute_payment(token, sale["paymentID"])
    # The package's rule for "paid": statusCode 0000, statusMessage Successful, Completed.
    assert (executed["statusCode"], executed["statusMessage"], executed["transactionStatus"]) == (
        "0000", "Successful", "Completed")
    assert (await client.payment_status(token, sale["paymentID"]))["transactionStatus"] == "Completed"
    found = await client.search_transaction(token, executed["trxID"])
    assert (found["statusCode"], found["payerAccount"], found["amount"]) == ("0000", WALLET, "100.00")

    async def refund_status() -> dict:
        # Not a method of the package: its request helper and headers, the v1 status body.
        return await client._post_json("tokenized/checkout/payment/refund",
                                       headers=client._auth_headers(token),
                                       json_body={"paymentID": sale["paymentID"],
                                                  "trxID": executed["trxID"]})

    before = await refund_status()
    assert (before["statusCode"], before["statusMessage"]) == ("2002", "Invalid Payment ID")
    refund = await client.refund(token, payment_id=sale["paymentID"], trx_id=executed["trxID"],
                                 amount="40.00", sku="sku-1", reason="Customer request")
    assert (refund["statusCode"], refund["transactionStatus"], refund["amount"]) == (
        "0000", "Completed", "40.00")
    after = await refund_status()
    assert (after["statusCode"], after["refundTrxID"]) == ("0000", refund["refundTrxID"])

    ledger = await loopback.admin.ledger()
    assert [(e["kind"], e["amount_poisha"]) for e in ledger] == [
        ("AUTHORIZE", 30000), ("SALE", 10000), ("REFUND", 4000)]
    calls = await loopback.admin.calls()
    assert {op: n for op, n in calls.items() if n} == {
        "grant": 1, "refresh": 1, "create": 2, "execute": 2, "query": 2, "search": 1, "refund": 1,
        "refund_status": 2}
