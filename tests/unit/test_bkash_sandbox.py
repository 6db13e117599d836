"""The bKash sandbox behaves like the provider described in /work/shared/reference/bkash-api.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from embedded import serve_asgi
from sandbox.bkash import BkashSandboxConfig, create_app
from sandbox.bkash.admin import BkashSandboxAdmin, BkashSandboxAdminError
from sandbox.bkash.customer import BkashCustomer

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = "http://bkash.test"
MERCHANT = "http://merchant.test"
VERSION = "v1.2.0-beta"
CONFIG = BkashSandboxConfig()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_763_700_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def merchant_app() -> Starlette:
    """A stand-in merchant endpoint that records every browser return."""
    hits: list[str] = []

    async def callback(request: Request) -> PlainTextResponse:
        hits.append(str(request.url))
        return PlainTextResponse("thank you")

    app = Starlette(routes=[Route("/bkash/callback", callback)])
    app.state.hits = hits
    return app


class Bkash:
    """One sandbox, a merchant, and the calls a merchant's client makes, spelled as on the wire."""

    def __init__(self, http: httpx.AsyncClient, base: str, clock: FakeClock, merchant: Starlette,
                 merchant_base: str = MERCHANT) -> None:
        self.http, self.base, self.clock, self.merchant = http, base, clock, merchant
        self.merchant_base = merchant_base
        self.admin = BkashSandboxAdmin(base, http)
        self.customer = BkashCustomer(http)
        self.token: str | None = None
        self._invoices = 0

    def url(self, path: str) -> str:
        return f"{self.base}/{VERSION}/tokenized/checkout/{path}"

    async def token_call(self, path: str, body: dict, username: str = CONFIG.username,
                         password: str = CONFIG.password) -> httpx.Response:
        return await self.http.post(self.url(path), json=body,
                                    headers={"username": username, "password": password,
                                             "Accept": "application/json"})

    async def grant(self, **overrides: str) -> httpx.Response:
        body = {"app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret, **overrides}
        return await self.token_call("token/grant", body)

    async def call(self, path: str, body: dict, *, token: str | None = None,
                   app_key: str = CONFIG.app_key) -> httpx.Response:
        if token is None:
            if self.token is None:
                self.token = (await self.grant()).json()["id_token"]
            token = self.token
        return await self.http.post(self.url(path), json=body,
                                    headers={"Authorization": token, "X-App-Key": app_key})

    def new_invoice(self) -> str:
        self._invoices += 1
        return f"INV-{self._invoices:05d}"

    def create_body(self, **overrides: object) -> dict:
        body = {"mode": "0011", "payerReference": "01770618575",
                "callbackURL": f"{self.merchant_base}/bkash/callback", "amount": "500.00",
                "currency": "BDT", "intent": "authorization",
                "merchantInvoiceNumber": self.new_invoice(), "merchantAssociationInfo": ""}
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    async def create(self, **overrides: object) -> dict:
        answer = (await self.call("create", self.create_body(**overrides))).json()
        assert answer["statusCode"] == "0000", answer
        return answer

    async def approved(self, **overrides: object) -> dict:
        created = await self.create(**overrides)
        journey = await self.customer.approve(created["bkashURL"])
        assert journey.redirect_status == "success"
        return created

    async def authorized(self, **overrides: object) -> dict:
        created = await self.approved(**overrides)
        executed = (await self.call("execute", {"paymentID": created["paymentID"]})).json()
        assert executed["transactionStatus"] == "Authorized", executed
        return executed

    async def status(self, payment_id: str) -> dict:
        return (await self.call("payment/status", {"paymentID": payment_id})).json()


@pytest.fixture
async def make_bkash():
    """A sandbox (configured per test) and a merchant, both reached in-process over ASGI."""
    clients: list[httpx.AsyncClient] = []

    def make(**config: object) -> Bkash:
        clock = FakeClock()
        sandbox, merchant = create_app(BkashSandboxConfig(**config), clock=clock), merchant_app()
        http = httpx.AsyncClient(mounts={SANDBOX: httpx.ASGITransport(sandbox),
                                         MERCHANT: httpx.ASGITransport(merchant)})
        clients.append(http)
        return Bkash(http, SANDBOX, clock, merchant)

    yield make
    for http in clients:
        await http.aclose()


@pytest.fixture
def bkash(make_bkash) -> Bkash:
    return make_bkash()


# --- tokens ---------------------------------------------------------------------------------


async def test_grant_answers_cognito_tokens_with_numeric_expires_in(bkash: Bkash):
    answer = (await bkash.grant()).json()
    assert answer["statusCode"] == "0000" and answer["statusMessage"] == "Successful"
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 3600 and isinstance(answer["expires_in"], int)
    assert answer["id_token"].count(".") == 2 and answer["refresh_token"].count(".") == 4


async def test_refresh_issues_a_new_id_token_and_returns_the_same_refresh_token(bkash: Bkash):
    granted = (await bkash.grant()).json()
    refreshed = (await bkash.token_call("token/refresh", {
        "app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret,
        "refresh_token": granted["refresh_token"]})).json()
    assert refreshed["statusCode"] == "0000"
    assert refreshed["refresh_token"] == granted["refresh_token"]
    assert refreshed["id_token"] != granted["id_token"]
    for token in (granted["id_token"], refreshed["id_token"]):
        assert (await bkash.call("payment/status", {"paymentID": "TR0011nope"}, token=token)).status_code == 200


async def test_wrong_app_key_or_secret_is_2001_in_a_200(bkash: Bkash):
    for override in ({"app_key": "nope"}, {"app_secret": "nope"}):
        response = await bkash.grant(**override)
        assert response.status_code == 200
        assert response.json() == {"statusCode": "2001", "statusMessage": "Invalid App Key"}


async def test_wrong_username_or_password_is_a_gateway_401(bkash: Bkash):
    body = {"app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret}
    for headers in ({"username": "x"}, {"password": "x"}):
        response = await bkash.token_call("token/grant", body, **headers)
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


async def test_id_token_expires_after_an_hour_and_refresh_recovers(bkash: Bkash):
    granted = (await bkash.grant()).json()
    bkash.clock.advance(3599)
    assert (await bkash.call("payment/status", {"paymentID": "x"}, token=granted["id_token"])).status_code == 200
    bkash.clock.advance(1)
    expired = await bkash.call("payment/status", {"paymentID": "x"}, token=granted["id_token"])
    assert (expired.status_code, expired.json()) == (401, {"message": "The incoming token has expired"})
    refreshed = (await bkash.token_call("token/refresh", {
        "app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret,
        "refresh_token": granted["refresh_token"]})).json()
    assert (await bkash.call("payment/status", {"paymentID": "x"}, token=refreshed["id_token"])).status_code == 200


async def test_refresh_token_outliving_its_lifetime_is_refused(make_bkash):
    bkash = make_bkash(refresh_token_ttl_seconds=7 * 24 * 3600)
    granted = (await bkash.grant()).json()
    bkash.clock.advance(7 * 24 * 3600)
    answer = (await bkash.token_call("token/refresh", {
        "app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret,
        "refresh_token": granted["refresh_token"]})).json()
    assert answer["statusCode"] == "2079"


async def test_third_token_call_in_an_hour_blocks_the_merchant_for_the_lockout(bkash: Bkash):
    granted = (await bkash.grant()).json()
    bkash.clock.advance(60)
    refresh = {"app_key": CONFIG.app_key, "app_secret": CONFIG.app_secret,
               "refresh_token": granted["refresh_token"]}
    assert (await bkash.token_call("token/refresh", refresh)).json()["statusCode"] == "0000"
    bkash.clock.advance(60)
    blocked = await bkash.grant()
    assert blocked.status_code == 429
    assert blocked.json() == {"message": "Too many token requests: blocked for one hour"}

    bkash.clock.advance(3599)
    assert (await bkash.token_call("token/refresh", refresh)).status_code == 429
    stats = await bkash.admin.stats()
    assert stats["grant_calls"] == 2 and stats["refresh_calls"] == 2
    assert len(stats["token_calls"]) == 3
    assert stats["blocked_until"] == bkash.clock.now + 1

    bkash.clock.advance(1)
    assert (await bkash.grant()).json()["statusCode"] == "0000"
    assert (await bkash.admin.stats())["blocked_until"] is None


async def test_token_limit_counts_a_rolling_hour(bkash: Bkash):
    assert (await bkash.grant()).status_code == 200
    bkash.clock.advance(1800)
    assert (await bkash.grant()).status_code == 200
    bkash.clock.advance(1801)  # the first call has left the window
    assert (await bkash.grant()).status_code == 200
    assert (await bkash.grant()).status_code == 429


async def test_token_limit_zero_means_unlimited(make_bkash):
    bkash = make_bkash(token_calls_per_hour=0)
    for _ in range(10):
        assert (await bkash.grant()).json()["statusCode"] == "0000"


async def test_gateway_refuses_unknown_bearer_prefixed_and_foreign_app_key_tokens(bkash: Bkash):
    token = (await bkash.grant()).json()["id_token"]
    body = {"paymentID": "x"}
    for bad in ("", "not-a-token", f"Bearer {token}"):
        response = await bkash.call("payment/status", body, token=bad)
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    response = await bkash.call("payment/status", body, token=token, app_key="someone-else")
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})


async def test_unknown_api_path_gets_the_gateways_missing_token_answer(bkash: Bkash):
    response = await bkash.call("payment/capture", {"paymentID": "x"})
    assert (response.status_code, response.json()) == (403, {"message": "Missing Authentication Token"})


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("override", "code"), [
    ({"mode": "0001"}, "2063"),
    ({"amount": "0"}, "2006"),
    ({"amount": "0.00"}, "2006"),
    ({"amount": "-5"}, "2006"),
    ({"amount": "12.345"}, "2006"),
    ({"amount": "1e3"}, "2006"),
    ({"amount": 0}, "2006"),  # [OBS] the JSON number 0 got 2006 "Invalid amount."
    ({"amount": -5}, "2006"),
    ({"amount": 12.345}, "2006"),
    ({"amount": 1e20}, "2006"),
    ({"amount": True}, "2006"),
    ({"amount": [500]}, "2006"),
    ({"currency": "USD"}, "2007"),
    ({"intent": "capture"}, "2008"),
    ({"merchantInvoiceNumber": "INV<1>"}, "2031"),
    ({"merchantInvoiceNumber": "A&B"}, "2031"),
    ({"merchantInvoiceNumber": "x" * 256}, "2031"),
    ({"merchantInvoiceNumber": ""}, "2031"),
    ({"merchantInvoiceNumber": True}, "2031"),
    ({"merchantInvoiceNumber": ["INV-1"]}, "2031"),
    ({"merchantInvoiceNumber": {"id": 1}}, "2031"),
    ({"payerReference": True}, "2048"),
    ({"payerReference": ["01770618575"]}, "2048"),
    ({"payerReference": {"id": 1}}, "2048"),
    ({"payerReference": "a<b"}, "2048"),
    ({"payerReference": "x" * 256}, "2048"),
    ({"callbackURL": "/bkash/callback"}, "2049"),
    ({"callbackURL": "ftp://merchant.test/cb"}, "2049"),
    ({"callbackURL": "https://"}, "2049"),
    ({"payerReference": None}, "2065"),
    ({"payerReference": ""}, "2065"),
    ({"amount": None}, "2065"),
    ({"callbackURL": None}, "2065"),
])
async def test_create_rejects_invalid_fields_with_bkash_codes(bkash: Bkash, override: dict, code: str):
    body = bkash.create_body(**override)
    response = await bkash.call("create", body)
    assert response.status_code == 200
    assert response.json()["statusCode"] == code
    assert await bkash.admin.payments(body.get("merchantInvoiceNumber", "")) == []


async def test_create_answers_with_ids_urls_and_signed_callbacks_like_bkash(bkash: Bkash):
    body = bkash.create_body(amount="12", callbackURL=f"{MERCHANT}/bkash/callback?userId=7")
    answer = (await bkash.call("create", body)).json()
    pid = answer["paymentID"]
    assert re.fullmatch(r"TR0011[A-Za-z0-9]{5,7}\d{13}", pid)
    assert answer["amount"] == "12" and answer["transactionStatus"] == "Initiated"
    assert answer["merchantInvoiceNumber"] == body["merchantInvoiceNumber"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d:\d{3} GMT\+0600", answer["paymentCreateTime"])
    assert re.fullmatch(rf"{SANDBOX}/checkout/\?paymentId={pid}&hash=[^&]+&mode=0011&apiVersion=v1\.2\.0-beta/",
                        answer["bkashURL"])
    signature = re.search(r"signature=([A-Za-z0-9]{10})$", answer["successCallbackURL"]).group(1)
    for status, key in (("success", "successCallbackURL"), ("failure", "failureCallbackURL"),
                        ("cancel", "cancelledCallbackURL")):
        assert answer[key] == (f"{MERCHANT}/bkash/callback?userId=7&paymentID={pid}"
                               f"&status={status}&signature={signature}")


async def test_public_base_url_is_used_for_the_hosted_page(make_bkash):
    bkash = make_bkash(public_base_url="https://pay.example/sbx/")
    answer = await bkash.create()
    assert answer["bkashURL"].startswith("https://pay.example/sbx/checkout/?paymentId=")


async def test_second_create_for_an_invoice_already_authorized_is_2029(bkash: Bkash):
    abandoned = await bkash.create()
    invoice = abandoned["merchantInvoiceNumber"]
    await bkash.authorized(merchantInvoiceNumber=invoice)  # a retry after an abandoned page is fine
    again = await bkash.call("create", bkash.create_body(merchantInvoiceNumber=invoice))
    assert again.json() == {"statusCode": "2029", "statusMessage": "Duplicate for All Transactions"}


# --- the Auth & Capture lifecycle -------------------------------------------------------------


async def test_authorize_then_capture_moves_the_money_once(bkash: Bkash):
    created = await bkash.create(amount="500.50")
    pid, invoice = created["paymentID"], created["merchantInvoiceNumber"]
    journey = await bkash.customer.approve(created["bkashURL"])
    assert journey.redirect_status == "success"
    assert journey.callback_url_hit == f"{created['successCallbackURL']}&apiVersion=1.2.0-beta/"
    assert bkash.merchant.state.hits == [journey.callback_url_hit]

    # Approved on the page, but query still says Initiated until execute (§10.2).
    pending = await bkash.status(pid)
    assert pending["transactionStatus"] == "Initiated" and "trxID" not in pending

    executed = (await bkash.call("execute", {"paymentID": pid})).json()
    assert executed["statusCode"] == "0000" and executed["transactionStatus"] == "Authorized"
    assert executed["intent"] == "authorization" and executed["customerMsisdn"] == "01770618575"
    assert executed["merchantInvoiceNumber"] == invoice and executed["amount"] == "500.50"
    assert re.fullmatch(r"[A-Z0-9]{10}", executed["trxID"])
    assert (await bkash.status(pid))["transactionStatus"] == "Authorized"

    captured = (await bkash.call("payment/confirm/capture", {"paymentID": pid})).json()
    assert captured["statusCode"] == "0000"
    assert (captured["paymentID"], captured["trxID"], captured["transactionStatus"]) == (
        pid, executed["trxID"], "Completed")
    assert (await bkash.status(pid))["transactionStatus"] == "Completed"

    ledger = await bkash.admin.ledger(payment_id=pid)
    assert [(e["kind"], e["amount"], e["amount_poisha"], e["trx_id"]) for e in ledger] == [
        ("AUTHORIZE", "500.50", 50050, executed["trxID"]), ("CAPTURE", "500.50", 50050, executed["trxID"])]
    assert ledger == await bkash.admin.ledger(invoice=invoice)
    state = await bkash.admin.payment(pid)
    assert (state["status"], state["execute_count"], state["capture_count"], state["void_count"]) == (
        "Completed", 1, 1, 0)


async def test_sale_execute_completes_at_once_with_a_sale_entry(bkash: Bkash):
    created = await bkash.approved(intent="sale", amount="12")
    executed = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    assert executed["transactionStatus"] == "Completed" and executed["intent"] == "sale"
    ledger = await bkash.admin.ledger(payment_id=created["paymentID"])
    assert [(e["kind"], e["amount"]) for e in ledger] == [("SALE", "12.00")]


@pytest.mark.parametrize("path", ["payment/confirm/void", "payment/confirm/capture/void"])
async def test_void_cancels_an_authorization_on_either_documented_path(bkash: Bkash, path: str):
    executed = await bkash.authorized()
    pid = executed["paymentID"]
    voided = (await bkash.call(path, {"paymentID": pid})).json()
    assert voided["statusCode"] == "0000" and voided["transactionStatus"] == "Cancelled"
    assert voided["trxID"] == executed["trxID"]
    assert (await bkash.status(pid))["transactionStatus"] == "Cancelled"
    assert [e["kind"] for e in await bkash.admin.ledger(payment_id=pid)] == ["AUTHORIZE", "VOID"]


async def test_execute_before_the_customer_approves_is_2060(bkash: Bkash):
    created = await bkash.create()
    answer = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    assert answer["statusCode"] == "2060"


async def test_execute_twice_on_a_completed_sale_is_2062_and_moves_no_money(bkash: Bkash):
    created = await bkash.approved(intent="sale")
    pid = created["paymentID"]
    assert (await bkash.call("execute", {"paymentID": pid})).json()["transactionStatus"] == "Completed"
    again = (await bkash.call("execute", {"paymentID": pid})).json()
    assert again == {"statusCode": "2062", "statusMessage": "The payment has already been completed"}
    assert len(await bkash.admin.ledger(payment_id=pid)) == 1
    assert (await bkash.admin.payment(pid))["execute_count"] == 2


async def test_execute_again_on_an_authorization_is_2117_until_it_is_captured(bkash: Bkash):
    # An Authorized payment is not completed: the portal's 2117 "The payment execution has already
    # been completed" says what happened; 2062 "The payment has already been completed" would not.
    async def execute_again(pid: str) -> dict:
        return (await bkash.call("execute", {"paymentID": pid})).json()

    authorized = (await bkash.authorized())["paymentID"]
    assert await execute_again(authorized) == {
        "statusCode": "2117", "statusMessage": "The payment execution has already been completed"}
    assert len(await bkash.admin.ledger(payment_id=authorized)) == 1

    await bkash.call("payment/confirm/capture", {"paymentID": authorized})
    assert (await execute_again(authorized))["statusCode"] == "2062"

    voided = (await bkash.authorized())["paymentID"]
    await bkash.call("payment/confirm/void", {"paymentID": voided})
    assert (await execute_again(voided))["statusCode"] == "2117"
    assert [e["kind"] for e in await bkash.admin.ledger(payment_id=voided)] == ["AUTHORIZE", "VOID"]


@pytest.mark.parametrize("end", ["cancel", "fail_pin"])
async def test_execute_after_the_customer_gave_up_is_2056_and_query_stays_initiated(bkash: Bkash, end: str):
    created = await bkash.create()
    journey = await getattr(bkash.customer, end)(created["bkashURL"])
    assert journey.redirect_status == {"cancel": "cancel", "fail_pin": "failure"}[end]
    assert (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()["statusCode"] == "2056"
    assert (await bkash.status(created["paymentID"]))["transactionStatus"] == "Initiated"


async def test_query_can_report_the_page_outcome_when_configured(make_bkash):
    bkash = make_bkash(query_reports_page_outcome=True)
    cancelled, failed = await bkash.create(), await bkash.create()
    await bkash.customer.cancel(cancelled["bkashURL"])
    await bkash.customer.fail_pin(failed["bkashURL"])
    assert (await bkash.status(cancelled["paymentID"]))["transactionStatus"] == "Cancelled"
    assert (await bkash.status(failed["paymentID"]))["transactionStatus"] == "Failed"


async def test_capture_and_void_refuse_the_wrong_state(bkash: Bkash):
    async def settle(op: str, pid: str) -> str:
        path = {"capture": "payment/confirm/capture", "void": "payment/confirm/void"}[op]
        return (await bkash.call(path, {"paymentID": pid})).json()["statusCode"]

    initiated = (await bkash.create())["paymentID"]
    assert await settle("capture", initiated) == "2056"
    assert await settle("void", initiated) == "2056"

    customer_cancelled = await bkash.create()
    await bkash.customer.cancel(customer_cancelled["bkashURL"])
    assert await settle("capture", customer_cancelled["paymentID"]) == "2056"

    captured = (await bkash.authorized())["paymentID"]
    assert await settle("capture", captured) == "0000"
    assert await settle("capture", captured) == "2119"
    assert await settle("void", captured) == "2068"

    voided = (await bkash.authorized())["paymentID"]
    assert await settle("void", voided) == "0000"
    assert await settle("void", voided) == "2119"
    assert await settle("capture", voided) == "2069"

    assert await settle("capture", "TR0011unknown1763700000000") == "2002"
    kinds = [e["kind"] for e in await bkash.admin.ledger()]
    assert kinds == ["AUTHORIZE", "CAPTURE", "AUTHORIZE", "VOID"]


async def test_capture_or_void_of_a_completed_sale_is_2068_not_the_authorization_code(bkash: Bkash):
    # A sale was never authorized, so 2119 "The authorized payment has already been processed"
    # does not describe it; 2068 "Transaction has already been completed" does.
    created = await bkash.approved(intent="sale")
    pid = created["paymentID"]
    await bkash.call("execute", {"paymentID": pid})
    for path in ("payment/confirm/capture", "payment/confirm/void"):
        answer = (await bkash.call(path, {"paymentID": pid})).json()
        assert answer == {"statusCode": "2068", "statusMessage": "Transaction has already been completed"}
    assert [e["kind"] for e in await bkash.admin.ledger(payment_id=pid)] == ["SALE"]


async def test_settle_errors_can_use_the_void_pages_errorCode_envelope(make_bkash):
    bkash = make_bkash(settle_error_envelope="errorCode")
    pid = (await bkash.create())["paymentID"]
    answer = (await bkash.call("payment/confirm/void", {"paymentID": pid})).json()
    assert answer == {"errorCode": "2056", "errorMessage": "Invalid Payment State"}
    assert (await bkash.call("execute", {"paymentID": pid})).json()["statusCode"] == "2060"


@pytest.mark.parametrize(("wallet", "code", "message"), [
    ("01823074817", "2023", "Insufficient Balance"),
    ("01823074818", "2038", "Debit party identity tag prohibits execution of this transaction."),
])
async def test_declining_sandbox_wallets_fail_at_execute(bkash: Bkash, wallet: str, code: str, message: str):
    created = await bkash.create()
    journey = await bkash.customer.approve(created["bkashURL"], wallet=wallet)
    assert journey.redirect_status == "success"
    answer = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    assert answer == {"statusCode": code, "statusMessage": message}
    assert (await bkash.status(created["paymentID"]))["transactionStatus"] == "Failed"
    assert (await bkash.admin.payment(created["paymentID"]))["failure_code"] == code
    assert await bkash.admin.ledger(payment_id=created["paymentID"]) == []


async def test_query_spells_the_invoice_merchantInvoice_and_omits_unexecuted_fields(bkash: Bkash):
    created = await bkash.create()
    answer = await bkash.status(created["paymentID"])
    assert answer["merchantInvoice"] == created["merchantInvoiceNumber"]
    assert "merchantInvoiceNumber" not in answer
    assert "trxID" not in answer and "paymentExecuteTime" not in answer
    assert (answer["transactionStatus"], answer["verificationStatus"], answer["mode"]) == (
        "Initiated", "Complete", "0011")
    assert (await bkash.status("TR0011nope1763700000000"))["statusCode"] == "2002"


async def test_authorization_not_settled_within_the_hold_expires(make_bkash):
    bkash = make_bkash(authorization_hold_seconds=600)
    executed = await bkash.authorized()
    pid = executed["paymentID"]
    bkash.clock.advance(600)
    assert (await bkash.status(pid))["transactionStatus"] == "Cancelled"
    assert (await bkash.call("payment/confirm/capture", {"paymentID": pid})).json()["statusCode"] == "2069"
    ledger = await bkash.admin.ledger(payment_id=pid)
    assert [e["kind"] for e in ledger] == ["AUTHORIZE", "EXPIRE"]
    assert ledger[1]["at"] == ledger[0]["at"] + 600


# --- search and refund -----------------------------------------------------------------------


async def test_search_finds_executed_transactions_and_2033_otherwise(bkash: Bkash):
    executed = await bkash.authorized(amount="10")
    found = (await bkash.call("general/searchTransaction", {"trxID": executed["trxID"]})).json()
    assert (found["statusCode"], found["customerMsisdn"], found["amount"], found["transactionStatus"]) == (
        "0000", "8801770618575", "10", "Authorized")
    missing = (await bkash.call("general/searchTransaction", {"trxID": "NOPE000000"})).json()
    assert missing == {"statusCode": "2033", "statusMessage": "Transaction Not Found"}


async def test_refund_needs_a_completed_payment_and_stays_within_the_amount(bkash: Bkash):
    executed = await bkash.authorized(amount="100")
    pid, trx = executed["paymentID"], executed["trxID"]
    refund = {"paymentID": pid, "trxID": trx, "amount": "40.50", "sku": "sku-1", "reason": "changed mind"}
    assert (await bkash.call("payment/refund", refund)).json()["statusCode"] == "2127"

    await bkash.call("payment/confirm/capture", {"paymentID": pid})
    answer = (await bkash.call("payment/refund", refund)).json()
    assert (answer["statusCode"], answer["originalTrxID"], answer["amount"]) == ("0000", trx, "40.50")
    over = (await bkash.call("payment/refund", {**refund, "amount": "60.00"})).json()
    assert over == {"statusCode": "2072", "statusMessage": "Refund amount not valid"}

    status = (await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx})).json()
    assert status["refundTrxID"] == answer["refundTrxID"]
    ledger = await bkash.admin.ledger(payment_id=pid)
    assert [(e["kind"], e["amount_poisha"]) for e in ledger] == [
        ("AUTHORIZE", 10000), ("CAPTURE", 10000), ("REFUND", 4050)]
    assert ledger[-1]["trx_id"] == answer["refundTrxID"] and ledger[-1]["original_trx_id"] == trx


async def test_refund_status_before_any_refund_is_2002_as_the_official_plugin_documents(bkash: Bkash):
    created = await bkash.approved(intent="sale")
    executed = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    status = (await bkash.call("payment/refund", {"paymentID": executed["paymentID"],
                                                   "trxID": executed["trxID"]})).json()
    assert status == {"statusCode": "2002", "statusMessage": "Invalid Payment ID"}


@pytest.mark.parametrize("body", [
    # v2's name for the amount on the v1 URL (bkash-api.md §9): neither a v1 refund nor a status query.
    {"refundAmount": "10"},
    {"refundAmount": "10", "sku": "sku-1", "reason": "changed mind"},
    {"sku": "sku-1", "reason": "changed mind"},  # a refund that forgot its amount
])
async def test_v1_refund_without_amount_is_refused_not_taken_as_a_status_query(bkash: Bkash, body: dict):
    created = await bkash.approved(intent="sale", amount="100")
    executed = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    pid, trx = executed["paymentID"], executed["trxID"]
    refunded = (await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx, "amount": "5",
                                                     "sku": "s", "reason": "r"})).json()
    assert refunded["statusCode"] == "0000"
    answer = (await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx, **body})).json()
    assert answer == {"statusCode": "2065", "statusMessage": "Mendatory field missing"}
    assert [e["kind"] for e in await bkash.admin.ledger(payment_id=pid)] == ["SALE", "REFUND"]


# --- agreeing with public clients (pybkash, bkash-pgw-tokenized) -------------------------------


@pytest.mark.parametrize(("amount", "echoed", "poisha"), [
    (500, "500", 50000), (500.5, "500.5", 50050), (12.25, "12.25", 1225), (1000.0, "1000.0", 100000)])
async def test_create_accepts_a_json_number_amount_as_pybkash_sends_it(
        bkash: Bkash, amount: float, echoed: str, poisha: int):
    created = await bkash.approved(intent="sale", amount=amount)
    assert created["amount"] == echoed  # bKash answers amounts as strings (§4.2)
    executed = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    assert (executed["transactionStatus"], executed["amount"]) == ("Completed", echoed)
    assert (await bkash.status(created["paymentID"]))["amount"] == echoed
    ledger = await bkash.admin.ledger(payment_id=created["paymentID"])
    assert [(e["kind"], e["amount_poisha"]) for e in ledger] == [("SALE", poisha)]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_create_refuses_non_finite_json_numbers(bkash: Bkash, literal: bytes):
    body = bkash.create_body(amount=999)
    raw = json.dumps(body).replace("999", literal.decode()).encode()
    response = await bkash.http.post(bkash.url("create"), content=raw, headers={
        "Authorization": (await bkash.grant()).json()["id_token"], "X-App-Key": CONFIG.app_key,
        "Content-Type": "application/json"})
    assert response.json()["statusCode"] == "2006"


async def test_numbers_for_invoice_and_payer_reference_are_both_taken_as_their_text(bkash: Bkash):
    created = await bkash.create(merchantInvoiceNumber=20250001, payerReference=1770618575)
    assert created["merchantInvoiceNumber"] == "20250001"
    queried = await bkash.status(created["paymentID"])
    assert (queried["merchantInvoice"], queried["payerReference"]) == ("20250001", "1770618575")
    assert [p["payment_id"] for p in await bkash.admin.payments("20250001")] == [created["paymentID"]]


async def test_agreement_create_as_pybkash_sends_it_is_2063_mode_not_2065(bkash: Bkash):
    # pybkash's create_agreement body: mode 0000 with callbackURL and payerReference only.
    body = {"mode": "0000", "callbackURL": f"{MERCHANT}/bkash/callback", "payerReference": "01770618575"}
    answer = (await bkash.call("create", body)).json()
    assert answer == {"statusCode": "2063", "statusMessage": "Mode is not valid as per request data"}
    assert (await bkash.call("create", {"payerReference": "x"})).json()["statusCode"] == "2065"


EXECUTE_KEYS_2025 = ["paymentID", "trxID", "transactionStatus", "amount", "currency", "intent",
                     "paymentExecuteTime", "merchantInvoiceNumber", "payerType", "payerReference",
                     "customerMsisdn", "payerAccount", "maxRefundableAmount", "statusCode",
                     "statusMessage"]


@pytest.mark.parametrize(("intent", "status", "refundable"), [
    ("sale", "Completed", "599.00"), ("authorization", "Authorized", "0.00")])
async def test_execute_answer_has_the_2025_shape(bkash: Bkash, intent: str, status: str, refundable: str):
    created = await bkash.approved(intent=intent, amount="599.00", payerReference="bKash_ref_2")
    executed = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    assert list(executed) == EXECUTE_KEYS_2025
    assert (executed["transactionStatus"], executed["payerType"], executed["payerReference"],
            executed["customerMsisdn"], executed["payerAccount"], executed["maxRefundableAmount"]) == (
        status, "Customer", "bKash_ref_2", "01770618575", "01770618575", refundable)


SEARCH_KEYS = ["trxID", "initiationTime", "completedTime", "transactionType", "customerMsisdn",
               "payerAccount", "transactionStatus", "amount", "currency", "organizationShortCode"]


async def test_search_answer_carries_payer_account_and_the_newest_fields(bkash: Bkash):
    created = await bkash.approved(intent="sale", amount="10")
    executed = (await bkash.call("execute", {"paymentID": created["paymentID"]})).json()
    found = (await bkash.call("general/searchTransaction", {"trxID": executed["trxID"]})).json()
    assert list(found) == [*SEARCH_KEYS, "serviceFee", "payerType", "creditedAmount",
                           "maxRefundableAmount", "statusCode", "statusMessage"]
    assert (found["payerAccount"], found["payerType"], found["transactionType"]) == (
        "01770618575", "Customer", "bKash Tokenized Checkout via API")
    assert (found["serviceFee"], found["creditedAmount"], found["maxRefundableAmount"]) == (
        "0.00", "10.00", "10")

    refund = (await bkash.call("payment/refund", {"paymentID": executed["paymentID"],
                                                   "trxID": executed["trxID"], "amount": "4",
                                                   "sku": "s", "reason": "r"})).json()
    again = (await bkash.call("general/searchTransaction", {"trxID": executed["trxID"]})).json()
    assert again["maxRefundableAmount"] == "6.00"
    # A refund is a transaction of its own, searchable by its trxID (the [OBS] 2021 reversal).
    reversal = (await bkash.call("general/searchTransaction", {"trxID": refund["refundTrxID"]})).json()
    assert list(reversal) == [*SEARCH_KEYS, "originalTrxAmount", "statusCode", "statusMessage"]
    assert (reversal["transactionType"], reversal["amount"], reversal["originalTrxAmount"]) == (
        "bKash Checkout Reversal via API", "4", "10")


# --- the hosted page --------------------------------------------------------------------------


async def test_page_rerenders_on_a_bad_wallet_and_fails_after_three_wrong_otps(bkash: Bkash):
    created = await bkash.create()
    pid = created["paymentID"]
    page = await bkash.http.get(created["bkashURL"])
    assert page.status_code == 200 and 'name="wallet"' in page.text

    bad = await bkash.http.post(f"{SANDBOX}/checkout/{pid}/wallet", data={"wallet": "0177"})
    assert bad.status_code == 200 and "valid 11-digit" in bad.text and 'name="wallet"' in bad.text
    otp_page = await bkash.http.post(f"{SANDBOX}/checkout/{pid}/wallet", data={"wallet": "01770618575"})
    assert 'name="otp"' in otp_page.text
    for _ in range(2):
        wrong = await bkash.http.post(f"{SANDBOX}/checkout/{pid}/otp", data={"otp": "000000"})
        assert wrong.status_code == 200 and "attempt(s) left" in wrong.text
    last = await bkash.http.post(f"{SANDBOX}/checkout/{pid}/otp", data={"otp": "000000"})
    assert last.status_code == 302
    query = parse_qs(urlsplit(last.headers["location"]).query)
    assert query["status"] == ["failure"] and query["paymentID"] == [pid]
    assert (await bkash.admin.payment(pid))["page_outcome"] == "failure"


async def test_page_refuses_a_wrong_hash_and_steps_out_of_turn(bkash: Bkash):
    created = await bkash.create()
    pid = created["paymentID"]
    assert (await bkash.http.get(f"{SANDBOX}/checkout/?paymentId={pid}&hash=forged")).status_code == 404
    early = await bkash.http.post(f"{SANDBOX}/checkout/{pid}/pin", data={"pin": "12121"})
    assert early.status_code == 409 and (await bkash.admin.payment(pid))["page_outcome"] is None


# --- fault injection --------------------------------------------------------------------------


async def test_error_code_fault_answers_without_applying(bkash: Bkash):
    body = bkash.create_body()
    invoice = body["merchantInvoiceNumber"]
    await bkash.admin.add_fault("create", "error_code", code="2003", match={"merchantInvoiceNumber": invoice})
    assert (await bkash.call("create", bkash.create_body())).json()["statusCode"] == "0000"  # other invoice
    answer = (await bkash.call("create", body)).json()
    assert answer == {"statusCode": "2003", "statusMessage": "Process failed"}
    assert await bkash.admin.payments(invoice) == []
    assert (await bkash.call("create", body)).json()["statusCode"] == "0000"  # times=1 spent


@pytest.mark.parametrize(("commit", "kinds"), [(False, []), (True, ["AUTHORIZE"])])
async def test_http_error_fault_answers_a_non_bkash_body_with_or_without_applying(
        bkash: Bkash, commit: bool, kinds: list[str]):
    created = await bkash.approved()
    pid = created["paymentID"]
    await bkash.admin.add_fault("execute", "http_error", status=502, commit=commit, match={"paymentID": pid})
    response = await bkash.call("execute", {"paymentID": pid})
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
    assert [e["kind"] for e in await bkash.admin.ledger(payment_id=pid)] == kinds
    expected = "Authorized" if commit else "Initiated"
    assert (await bkash.status(pid))["transactionStatus"] == expected


async def test_drop_connection_fault_surfaces_as_a_protocol_error_in_process(bkash: Bkash):
    executed = await bkash.authorized()
    pid = executed["paymentID"]
    await bkash.admin.add_fault("capture", "drop_connection", commit=True, match={"paymentID": pid})
    with pytest.raises(httpx.RemoteProtocolError):
        await bkash.call("payment/confirm/capture", {"paymentID": pid})
    assert (await bkash.status(pid))["transactionStatus"] == "Completed"


async def test_delay_after_commit_fault_applies_then_answers_late(bkash: Bkash):
    executed = await bkash.authorized()
    pid = executed["paymentID"]
    await bkash.admin.add_fault("void", "delay_after_commit", delay_seconds=0.2, match={"paymentID": pid})
    faults = await bkash.admin.faults()
    assert faults[0]["commit"] is True and faults[0]["remaining"] == 1
    answer = (await bkash.call("payment/confirm/capture/void", {"paymentID": pid})).json()
    assert answer["transactionStatus"] == "Cancelled"
    assert await bkash.admin.faults() == []


async def test_expire_token_fault_rejects_one_call_as_expired(bkash: Bkash):
    created = await bkash.create()
    pid = created["paymentID"]
    await bkash.admin.add_fault("query", "expire_token", match={"paymentID": pid})
    first = await bkash.call("payment/status", {"paymentID": pid})
    assert (first.status_code, first.json()) == (401, {"message": "The incoming token has expired"})
    assert (await bkash.call("payment/status", {"paymentID": pid})).status_code == 200


async def test_fault_applies_the_given_number_of_times_matching_by_invoice(bkash: Bkash):
    created = await bkash.create()
    pid, invoice = created["paymentID"], created["merchantInvoiceNumber"]
    await bkash.admin.add_fault("query", "error_code", code="2024", times=2,
                                match={"merchantInvoiceNumber": invoice})
    other = await bkash.create()
    assert (await bkash.status(other["paymentID"]))["statusCode"] == "0000"
    assert [(await bkash.status(pid))["statusCode"] for _ in range(3)] == ["2024", "2024", "0000"]


async def test_no_redirect_fault_approves_but_leaves_the_customer_on_the_page(bkash: Bkash):
    created = await bkash.create()
    pid = created["paymentID"]
    await bkash.admin.add_fault("page", "no_redirect", match={"paymentID": pid})
    journey = await bkash.customer.approve(created["bkashURL"])
    assert (journey.redirect_status, journey.callback_url_hit, journey.final_status_code) == (None, None, 200)
    assert "Payment approved" in journey.final_text
    assert bkash.merchant.state.hits == []
    assert (await bkash.call("execute", {"paymentID": pid})).json()["transactionStatus"] == "Authorized"


async def test_repeat_redirect_fault_sends_the_customer_to_the_callback_twice(bkash: Bkash):
    created = await bkash.create()
    await bkash.admin.add_fault("page", "repeat_redirect", match={"paymentID": created["paymentID"]})
    journey = await bkash.customer.approve(created["bkashURL"])
    assert journey.callback_hits == 2
    assert bkash.merchant.state.hits == [journey.callback_url_hit] * 2


async def test_invalid_faults_are_refused(bkash: Bkash):
    for operation, kind, extra in (("create", "no_redirect", {}), ("grant", "expire_token", {}),
                                   ("execute", "error_code", {}), ("explode", "http_error", {}),
                                   ("query", "http_error", {"match": {"payment": "x"}})):
        with pytest.raises(BkashSandboxAdminError, match="422"):
            await bkash.admin.add_fault(operation, kind, **extra)
    await bkash.admin.add_fault("grant", "http_error")
    await bkash.admin.clear_faults()
    assert await bkash.admin.faults() == []


async def test_reset_forgets_payments_tokens_and_faults(bkash: Bkash):
    created = await bkash.create()
    await bkash.admin.add_fault("query", "http_error")
    await bkash.admin.reset()
    assert await bkash.admin.payments(created["merchantInvoiceNumber"]) == []
    assert await bkash.admin.faults() == [] and (await bkash.admin.stats())["grant_calls"] == 0
    assert (await bkash.call("payment/status", {"paymentID": created["paymentID"]})).status_code == 401
    with pytest.raises(BkashSandboxAdminError, match="404"):
        await bkash.admin.payment(created["paymentID"])


# --- over real sockets ------------------------------------------------------------------------


async def test_customer_and_merchant_over_loopback_with_lost_responses():
    sandbox, merchant = create_app(), merchant_app()
    async with serve_asgi(sandbox) as sandbox_base, serve_asgi(merchant) as merchant_base, \
            httpx.AsyncClient(timeout=5) as http:
        bkash = Bkash(http, sandbox_base, FakeClock(), merchant, merchant_base=merchant_base)
        created = await bkash.create()
        pid = created["paymentID"]
        assert created["bkashURL"].startswith(f"{sandbox_base}/checkout/?paymentId={pid}&")

        journey = await bkash.customer.approve(created["bkashURL"])
        assert journey.redirect_status == "success" and journey.final_status_code == 200
        returned = parse_qs(urlsplit(merchant.state.hits[0]).query, keep_blank_values=True)
        assert returned["paymentID"] == [pid] and returned["status"] == ["success"]
        assert re.fullmatch(r"[A-Za-z0-9]{10}", returned["signature"][0])
        assert returned["apiVersion"] == ["1.2.0-beta/"]

        # The execute commits, but its response is lost past the client's timeout.
        await bkash.admin.add_fault("execute", "delay_after_commit", delay_seconds=1.0, match={"paymentID": pid})
        with pytest.raises(httpx.ReadTimeout):
            await http.post(bkash.url("execute"), json={"paymentID": pid}, timeout=0.2,
                            headers={"Authorization": bkash.token, "X-App-Key": CONFIG.app_key})
        assert (await bkash.status(pid))["transactionStatus"] == "Authorized"

        # The capture commits, then the TCP connection is cut mid-body.
        await bkash.admin.add_fault("capture", "drop_connection", commit=True, match={"paymentID": pid})
        with pytest.raises(httpx.RemoteProtocolError):
            await bkash.call("payment/confirm/capture", {"paymentID": pid})
        assert (await bkash.status(pid))["transactionStatus"] == "Completed"
        assert [e["kind"] for e in await bkash.admin.ledger(payment_id=pid)] == ["AUTHORIZE", "CAPTURE"]


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "sandbox.bkash", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout and "--app-key" in result.stdout


def test_sandbox_does_not_depend_on_temporal():
    code = ("import sys, sandbox.bkash, sandbox.bkash.customer, sandbox.bkash.admin, sandbox.bkash.__main__;"
            "sys.exit('temporalio' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0
