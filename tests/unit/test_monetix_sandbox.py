"""The Monetix sandbox behaves like the platform in /work/shared/reference/monetix-gate.md (Gate §3,
callbacks §4, Payment Page §5, codes §6) and the seed's bKash purchase, and speaks the wire format
of providers/monetix.py: most tests drive it with the real MonetixGateClient."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from embedded import serve_asgi
from providers.monetix import (
    MonetixCustomer,
    MonetixDuplicatePayment,
    MonetixGateClient,
    MonetixGateConfig,
    MonetixPaymentNotFound,
    MonetixPaymentPageConfig,
    MonetixRequestRejected,
    MonetixResultUnknown,
    MonetixSaleRequest,
    MonetixStatus,
    PaymentPageParams,
    build_payment_page_url,
)
from providers.monetix_signing import loads, sign, sign_request, verify
from sandbox.monetix import MonetixSandboxConfig, create_app
from sandbox.monetix.admin import MonetixSandboxAdmin, MonetixSandboxAdminError
from sandbox.monetix.customer import MonetixBkashCustomer, MonetixCustomerError

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = "http://monetix.test"
MERCHANT = "http://merchant.test"
CALLBACK_URL = f"{MERCHANT}/monetix/callback"
CONFIG = MonetixSandboxConfig()
KEY = CONFIG.secret_key
OTHER_PROJECT, OTHER_KEY = 5678, "other-project-secret"
FAST_RETRIES = [0.01, 0.02, 0.03]
CUSTOMER = MonetixCustomer(id="customer_123", ip_address="198.51.100.47", first_name="John", last_name="Doe",
                           email="johndoe@example.com")
REQUEST_ID = re.compile(r"^[0-9a-f]{40}-[0-9a-f]{40}-\d{8}$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_763_700_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def merchant_app(keys: dict[int, str] | None = None, answers: list[int] | None = None) -> Starlette:
    """A stand-in merchant callback endpoint: verifies each callback's signature with its project's
    key, records it, and answers the scripted statuses (then 200), 400 on a bad signature (§4.1)."""
    keys = dict(keys or {CONFIG.project_id: KEY})
    script = list(answers or [])
    received: list[dict[str, Any]] = []

    async def callback(request: Request) -> PlainTextResponse:
        body = loads(await request.body())
        verified = verify(body, keys.get(body.get("project_id"), "unknown-project"))
        status = (script.pop(0) if script else 200) if verified else 400
        received.append({"body": body, "verified": verified, "answered": status})
        return PlainTextResponse("OK" if status == 200 else "try again", status_code=status)

    app = Starlette(routes=[Route("/monetix/callback", callback, methods=["POST"])])
    app.state.received = received
    app.state.keys = keys  # a test may rotate a key
    return app


class Monetix:
    """One sandbox, one merchant, the merchant's Gate client, the customer and the admin."""

    def __init__(self, http: httpx.AsyncClient, base: str, app: Starlette | None, merchant: Starlette,
                 clock: FakeClock, callback_url: str = CALLBACK_URL, timeout: float = 5.0) -> None:
        self.http, self.base, self.app, self.merchant, self.clock = http, base, app, merchant, clock
        self.callback_url = callback_url
        self.gate = self.client(KEY, CONFIG.project_id, timeout)
        self.admin = MonetixSandboxAdmin(base, http)
        self.customer = MonetixBkashCustomer(http, base)

    def client(self, key: str, project_id: int = CONFIG.project_id, timeout: float = 5.0) -> MonetixGateClient:
        return MonetixGateClient(self.http, MonetixGateConfig(base_url=self.base, project_id=project_id,
                                                              secret_key=key, timeout_seconds=timeout))

    async def settle(self) -> None:
        """Wait for every callback delivery in flight (in-process sandboxes only)."""
        assert self.app is not None
        await self.app.state.sandbox.outbox.idle()

    def received(self, payment_id: str) -> list[dict[str, Any]]:
        return [r for r in self.merchant.state.received if r["body"].get("payment", {}).get("id") == payment_id]

    def callbacks(self, payment_id: str) -> list[dict[str, Any]]:
        """Bodies of the callbacks the merchant accepted (signature verified), in arrival order."""
        return [r["body"] for r in self.received(payment_id) if r["verified"]]

    def statuses(self, payment_id: str) -> list[str]:
        return [b["payment"]["status"] for b in self.callbacks(payment_id)]

    @staticmethod
    def new_id(prefix: str = "bk") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def sale(self, payment_id: str | None = None, amount: int = 100000,
                   account: str | None = "01712345678", **kw: Any) -> str:
        payment_id = payment_id or self.new_id()
        ack = await self.gate.sale(MonetixSaleRequest(payment_id=payment_id, amount=amount, customer=CUSTOMER,
                                                      account_number=account, **kw), self.callback_url)
        assert ack.payment_id == payment_id and ack.request_id and REQUEST_ID.match(ack.request_id)
        return payment_id

    async def instructed(self, **kw: Any) -> str:
        payment_id = await self.sale(**kw)
        await self.settle()
        assert self.statuses(payment_id)[-1] == "awaiting customer"
        return payment_id

    def sale_body(self, payment_id: str | None = None, **override: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "general": {"project_id": CONFIG.project_id, "payment_id": payment_id or self.new_id(),
                        "merchant_callback_url": self.callback_url},
            "customer": CUSTOMER.model_dump(),
            "account": {"number": "01712345678"},
            "payment": {"currency": "BDT", "amount": 100000},
        }
        for dotted, value in override.items():
            *parents, leaf = dotted.split("__")
            node = body
            for part in parents:
                node = node.setdefault(part, {})
            if value is _DROP:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        return body

    async def post(self, path: str, body: dict[str, Any], key: str | None = KEY) -> httpx.Response:
        """POST a raw Gate body, signed with ``key`` (``None``: unsigned)."""
        signed = sign_request(body, key) if key is not None else body
        return await self.http.post(self.base + path, json=signed)


_DROP = object()


@pytest.fixture
async def make_monetix():
    """A sandbox (configured per test) and a merchant, both reached in-process over ASGI."""
    clients: list[httpx.AsyncClient] = []
    apps: list[Starlette] = []

    def make(answers: list[int] | None = None, **config: Any) -> Monetix:
        clock = FakeClock()
        config.setdefault("callback_retry_delays", FAST_RETRIES)
        config.setdefault("other_projects", {OTHER_PROJECT: OTHER_KEY})
        merchant = merchant_app({CONFIG.project_id: KEY, OTHER_PROJECT: OTHER_KEY}, answers)
        to_merchant = httpx.AsyncClient(mounts={MERCHANT: httpx.ASGITransport(merchant)})
        app = create_app(MonetixSandboxConfig(**config), clock=clock, http=to_merchant)
        http = httpx.AsyncClient(mounts={SANDBOX: httpx.ASGITransport(app)})
        clients.extend([to_merchant, http])
        apps.append(app)
        return Monetix(http, SANDBOX, app, merchant, clock)

    yield make
    for app in apps:  # no delivery outlives its test
        await app.state.sandbox.outbox.aclose()
    for http in clients:
        await http.aclose()


@pytest.fixture
def monetix(make_monetix) -> Monetix:
    return make_monetix()


async def finish(m: Monetix, payment_id: str, **pay: Any) -> dict[str, Any]:
    """Customer pays, merchant sends the transaction ID, the final callback arrives."""
    trx = await m.customer.pay_in_bkash(payment_id, **pay)
    await m.gate.clarification(payment_id, {"transaction_id": trx})
    await m.settle()
    return [b for b in m.callbacks(payment_id) if b["payment"]["status"] in ("success", "decline")][-1]


# --- the Gate purchase ------------------------------------------------------------------------


async def test_sale_is_acknowledged_then_instructions_arrive_in_a_signed_callback(monetix: Monetix):
    payment_id = await monetix.sale(amount=50000, description="Deposit")
    await monetix.settle()
    [cb] = monetix.callbacks(payment_id)
    assert cb["payment"] == {"id": payment_id, "type": "purchase", "status": "awaiting customer",
                             "date": "2025-11-21T04:40:00+0000", "method": "Bkash",
                             "sum": {"amount": 50000, "currency": "BDT"}, "description": "Deposit"}
    assert cb["display_data"] == [{"type": "add_info", "title": "account_number", "data": "01700000000"},
                                  {"type": "add_info", "title": "amount", "data": "500"}]
    op = cb["operation"]
    assert isinstance(op["id"], int) and op["type"] == "sale" and op["status"] == "awaiting customer"
    assert REQUEST_ID.match(op["request_id"]) and op["provider"]["payment_id"] == ""
    assert cb["customer"] == {"id": "customer_123"} and cb["account"] == {"number": "01712345678"}
    snapshot = MonetixStatus.from_body(cb)
    assert not snapshot.final and snapshot.display_data[0].data == CONFIG.receiver_account


async def test_full_gate_purchase_with_the_real_client(monetix: Monetix):
    payment_id = await monetix.instructed()
    sale_request_id = monetix.callbacks(payment_id)[0]["operation"]["request_id"]

    trx = await monetix.customer.pay_in_bkash(payment_id, wallet="01898765432")
    assert re.fullmatch(r"[A-Z0-9]{10}", trx)
    ack = await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    assert ack.payment_id == payment_id and REQUEST_ID.match(ack.request_id or "")
    await monetix.settle()

    final = monetix.callbacks(payment_id)[-1]
    assert verify(final, KEY)
    assert final["payment"]["status"] == "success" and final["payment"]["sum"] == {"amount": 100000, "currency": "BDT"}
    op = final["operation"]
    assert (op["status"], op["code"], op["message"]) == ("success", "0", "Success")
    assert op["sum_initial"]["amount"] == op["sum_converted"]["amount"] == 100000
    assert op["provider"]["payment_id"] == trx and op["request_id"] == sale_request_id
    assert final["account"] == {"number": "01898765432"} and "display_data" not in final
    assert monetix.statuses(payment_id) == ["awaiting customer", "success"]

    monetix.clock.advance(CONFIG.min_status_delay_seconds)
    status = await monetix.gate.status(payment_id)
    assert status.final and status.status == "success" and status.signature_verified
    assert status.paid_poisha == 100000 and status.provider_payment_id == trx and status.code == "0"
    assert [e["kind"] for e in await monetix.admin.ledger(payment_id)] == ["CUSTOMER_PAID", "SETTLED"]
    view = await monetix.admin.payment(payment_id)
    assert view["status"] == "success" and view["paid_amount"] == 100000 and view["transaction_ids"] == [trx]
    assert [c["transaction_id"] for c in view["clarifications"]] == [trx]
    assert all(c["delivered"] and len(c["attempts"]) == 1 for c in view["callbacks"])


async def test_omitted_account_number_is_asked_for_with_clarification_fields(monetix: Monetix):
    payment_id = await monetix.sale(account=None)
    await monetix.settle()
    [asked] = monetix.callbacks(payment_id)
    assert asked["payment"]["status"] == asked["operation"]["status"] == "awaiting clarification"
    assert asked["clarification_fields"] == {"account": {"number": {"type": "string", "pattern": "^[0-9]{1,12}$"}}}
    assert "account" not in asked and "display_data" not in asked and asked["operation"]["code"] == "3191"
    assert (await monetix.customer.http.post(f"{SANDBOX}/sandbox/customer/pay",
                                             json={"payment_id": payment_id})).status_code == 409

    general = {"project_id": CONFIG.project_id, "payment_id": payment_id}
    wrong = await monetix.post("/v2/payment/clarification", {"general": general, "additional_data": {"transaction_id": "X"}})
    assert wrong.status_code == 400 and wrong.json()["code"] == "2004"
    assert wrong.json()["errors"][0]["field"] == "account.number"
    answered = await monetix.post("/v2/payment/clarification", {"general": general, "account": {"number": "01712345678"}})
    assert answered.status_code == 200 and answered.json()["status"] == "success"
    await monetix.settle()
    instructions = monetix.callbacks(payment_id)[-1]
    assert instructions["payment"]["status"] == "awaiting customer"
    assert instructions["account"] == {"number": "01712345678"} and instructions["display_data"]

    final = await finish(monetix, payment_id)
    assert final["payment"]["status"] == "success" and final["account"]["number"] == "01712345678"
    view = await monetix.admin.payment(payment_id)
    assert [(c["accepted"], c["code"]) for c in view["clarifications"]] == [(False, "2004"), (True, None), (True, None)]


async def test_customer_paying_a_different_amount_is_credited_the_paid_amount(monetix: Monetix):
    payment_id = await monetix.instructed(amount=100000)
    final = await finish(monetix, payment_id, amount=90050)
    assert final["payment"]["status"] == "success" and final["payment"]["sum"]["amount"] == 90050
    assert final["operation"]["sum_initial"]["amount"] == 90050
    settled = [e for e in await monetix.admin.ledger(payment_id) if e["kind"] == "SETTLED"]
    assert [e["amount"] for e in settled] == [90050]
    assert (await monetix.admin.payment(payment_id))["requested_amount"] == 100000


async def test_amount_change_policy_decline_is_20304_and_nothing_is_settled(make_monetix):
    m = make_monetix(amount_change_policy="decline")
    payment_id = await m.instructed(amount=100000)
    final = await finish(m, payment_id, amount=50000)
    assert (final["payment"]["status"], final["operation"]["code"]) == ("decline", "20304")
    assert final["operation"]["message"] == "Incorrect amount paid"
    assert [e["kind"] for e in await m.admin.ledger(payment_id)] == ["CUSTOMER_PAID"]
    # The exact amount still succeeds under this policy.
    other = await m.instructed()
    assert (await finish(m, other))["payment"]["status"] == "success"


async def test_unknown_transaction_id_is_a_general_decline(monetix: Monetix):
    payment_id = await monetix.instructed()
    other = await monetix.instructed()
    foreign_trx = await monetix.customer.pay_in_bkash(other)  # paid, but for another payment
    await monetix.gate.clarification(payment_id, {"transaction_id": foreign_trx})
    await monetix.settle()
    final = monetix.callbacks(payment_id)[-1]
    assert (final["payment"]["status"], final["operation"]["code"], final["operation"]["message"]) == \
        ("decline", "20000", "General decline")
    assert not [e for e in await monetix.admin.ledger(payment_id)]


async def test_insufficient_balance_wallet_is_declined_20105_without_moving_money(monetix: Monetix):
    payment_id = await monetix.instructed()
    final = await finish(monetix, payment_id, wallet="01823074817")
    assert (final["payment"]["status"], final["operation"]["code"]) == ("decline", "20105")
    assert final["account"]["number"] == "01823074817"
    assert await monetix.admin.ledger(payment_id) == []


async def test_no_transaction_id_within_the_clarification_timeout_is_declined_20602(monetix: Monetix):
    waiting_for_trx = await monetix.instructed()
    waiting_for_account = await monetix.sale(account=None)
    monetix.clock.advance(CONFIG.clarification_timeout_seconds - 1)
    assert (await monetix.admin.payment(waiting_for_trx))["status"] == "awaiting customer"
    monetix.clock.advance(1)
    for payment_id in (waiting_for_trx, waiting_for_account):
        view = await monetix.admin.payment(payment_id)
        assert (view["status"], view["code"], view["message"]) == ("decline", "20602", "Time-out")
    await monetix.settle()
    assert monetix.callbacks(waiting_for_trx)[-1]["operation"]["code"] == "20602"
    assert monetix.statuses(waiting_for_account) == ["awaiting clarification", "decline"]
    with pytest.raises(MonetixCustomerError, match="409"):
        await monetix.customer.pay_in_bkash(waiting_for_trx)


async def test_clarification_without_a_pending_need_is_3060_and_recorded(monetix: Monetix):
    payment_id = await monetix.instructed()
    trx = await monetix.customer.pay_in_bkash(payment_id)
    await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    with pytest.raises(MonetixRequestRejected) as again:
        await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    assert again.value.code == "3060" and again.value.http_status == 400
    with pytest.raises(MonetixRequestRejected) as other:
        await monetix.gate.clarification(payment_id, {"transaction_id": "ZZZZZZZZZZ"})
    assert other.value.code == "3060"
    view = await monetix.admin.payment(payment_id)
    # Every clarification is on record, so a test can prove a transaction ID was never sent twice.
    assert [(c["transaction_id"], c["accepted"], c["code"]) for c in view["clarifications"]] == \
        [(trx, True, None), (trx, False, "3060"), ("ZZZZZZZZZZ", False, "3060")]
    assert view["submitted_transaction_ids"] == [trx]
    await monetix.settle()
    assert monetix.statuses(payment_id) == ["awaiting customer", "success"]


async def test_clarification_for_an_unknown_payment_is_3061(monetix: Monetix):
    with pytest.raises(MonetixRequestRejected) as refused:
        await monetix.gate.clarification("never_sold", {"transaction_id": "ABCDE12345"})
    assert refused.value.code == "3061"


async def test_customer_pay_refuses_unknown_payments_and_bad_amounts(monetix: Monetix):
    with pytest.raises(MonetixCustomerError, match="404"):
        await monetix.customer.pay_in_bkash("nobody")
    payment_id = await monetix.instructed()
    for amount in (0, -100, "1000"):
        with pytest.raises(MonetixCustomerError, match="422"):
            await monetix.customer.pay_in_bkash(payment_id, amount=amount)  # type: ignore[arg-type]
    with pytest.raises(MonetixCustomerError, match="422"):
        await monetix.customer.pay_in_bkash(payment_id, wallet="not-a-wallet")


async def test_other_projects_use_their_own_keys(monetix: Monetix):
    other = monetix.client(OTHER_KEY, OTHER_PROJECT)
    payment_id = monetix.new_id()
    await other.sale(MonetixSaleRequest(payment_id=payment_id, amount=20000, customer=CUSTOMER,
                                        account_number="01712345678"), CALLBACK_URL)
    await monetix.settle()
    [cb] = monetix.callbacks(payment_id)
    assert cb["project_id"] == OTHER_PROJECT and verify(cb, OTHER_KEY) and not verify(cb, KEY)
    with pytest.raises(MonetixRequestRejected) as wrong_key:
        await monetix.client(KEY, OTHER_PROJECT).status(payment_id)
    assert wrong_key.value.code == "3261"
    # Same payment_id in the default project is a different payment.
    with pytest.raises(MonetixPaymentNotFound):
        await monetix.gate.status(payment_id)
    assert (await monetix.admin.payment(payment_id, project_id=OTHER_PROJECT))["requested_amount"] == 20000


# --- signatures and validation ----------------------------------------------------------------


async def test_missing_signature_is_3262_and_a_wrong_one_is_3261(monetix: Monetix):
    body = monetix.sale_body()
    unsigned = await monetix.post("/v2/payment/wallet/bkash/sale", body, key=None)
    assert unsigned.status_code == 400
    assert unsigned.json()["code"] == "3262" and unsigned.json()["message"] == "Empty signature"
    wrong = await monetix.post("/v2/payment/wallet/bkash/sale", body, key="not-the-key")
    answer = wrong.json()
    assert wrong.status_code == 400 and answer["code"] == "3261" and answer["message"] == "Invalid signature"
    assert answer["status"] == "error" and answer["payment_id"] == body["general"]["payment_id"]
    assert answer["project_id"] == CONFIG.project_id and REQUEST_ID.match(answer["request_id"])
    tampered = sign_request(body, KEY)
    tampered["payment"]["amount"] = 1000
    assert (await monetix.http.post(f"{SANDBOX}/v2/payment/wallet/bkash/sale", json=tampered)).json()["code"] == "3261"

    with pytest.raises(MonetixRequestRejected) as rejected:
        await monetix.client("wrong-key").sale(MonetixSaleRequest(
            payment_id=monetix.new_id(), amount=100000, customer=CUSTOMER), CALLBACK_URL)
    assert rejected.value.code == "3261" and "secret key" in str(rejected.value)
    stats = await monetix.admin.stats()
    assert stats["invalid_signature_requests"] == 3 and stats["empty_signature_requests"] == 1
    assert stats["payments"] == 0


async def test_unknown_project_is_2442(monetix: Monetix):
    with pytest.raises(MonetixRequestRejected) as rejected:
        await monetix.client(KEY, project_id=999).sale(MonetixSaleRequest(
            payment_id=monetix.new_id(), amount=100000, customer=CUSTOMER), CALLBACK_URL)
    assert rejected.value.code == "2442" and rejected.value.http_status == 400


@pytest.mark.parametrize(("override", "code", "field"), [
    ({"customer__email": _DROP}, "2004", "customer.email"),
    ({"customer__ip_address": ""}, "2004", "customer.ip_address"),
    ({"general__payment_id": _DROP}, "2004", "general.payment_id"),
    ({"payment__amount": _DROP}, "2004", "payment.amount"),
    ({"payment__currency": "USD"}, "3023", "payment.currency"),
    ({"payment__amount": 95500}, "502", "payment.amount"),
    ({"payment__amount": 0}, "502", "payment.amount"),
    ({"payment__amount": "100000"}, "502", "payment.amount"),
    ({"account__number": "0171-234"}, "502", "account.number"),
    ({"account__number": "1234567890123"}, "502", "account.number"),
])
async def test_invalid_sales_are_refused_with_the_registry_codes(monetix: Monetix, override: dict, code: str,
                                                                  field: str):
    answer = await monetix.post("/v2/payment/wallet/bkash/sale", monetix.sale_body(**override))
    assert answer.status_code == 400
    data = answer.json()
    assert data["status"] == "error" and data["code"] == code
    assert field in [e.get("field") for e in data["errors"]]
    assert (await monetix.admin.stats())["payments"] == 0


async def test_missing_fields_are_all_named(monetix: Monetix):
    answer = await monetix.post("/v2/payment/wallet/bkash/sale",
                                monetix.sale_body(customer__email=_DROP, customer__first_name=_DROP))
    assert {e["field"] for e in answer.json()["errors"]} == {"customer.email", "customer.first_name"}


async def test_unparseable_body_is_2003_and_other_wallet_methods_are_2541(monetix: Monetix):
    garbage = await monetix.http.post(f"{SANDBOX}/v2/payment/wallet/bkash/sale", content=b"not json")
    assert garbage.status_code == 400 and garbage.json()["code"] == "2003"
    other = await monetix.post("/v2/payment/wallet/easypaisa/sale", monetix.sale_body())
    assert other.status_code == 400 and other.json()["code"] == "2541"


async def test_reused_payment_id_is_3041_duplicate_payment(monetix: Monetix):
    payment_id = await monetix.sale()
    with pytest.raises(MonetixDuplicatePayment) as duplicate:
        await monetix.sale(payment_id=payment_id)
    assert duplicate.value.code == "3041"
    await monetix.settle()
    assert monetix.statuses(payment_id) == ["awaiting customer"]  # the second sale changed nothing


async def test_float_amount_signed_as_written_is_verified_then_refused_as_502(monetix: Monetix):
    body = monetix.sale_body()
    text = json.dumps(body).replace('"amount": 100000', '"amount": 100000.0')
    # A client that sends a float and signs its text (§2.2): the signature holds, the amount does not.
    body["general"]["signature"] = sign(loads(text), KEY)
    raw = json.dumps(body).replace('"amount": 100000', '"amount": 100000.0')
    answer = await monetix.http.post(f"{SANDBOX}/v2/payment/wallet/bkash/sale", content=raw.encode(),
                                     headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["code"] == "502"


async def test_default_callback_url_is_used_when_the_request_names_none(make_monetix):
    m = make_monetix(default_callback_url=CALLBACK_URL)
    body = m.sale_body()
    del body["general"]["merchant_callback_url"]
    assert (await m.post("/v2/payment/wallet/bkash/sale", body)).status_code == 200
    await m.settle()
    assert m.statuses(body["general"]["payment_id"]) == ["awaiting customer"]


async def test_callback_delay_in_the_request_postpones_the_callbacks(monetix: Monetix):
    body = monetix.sale_body(callback__delay=1)  # §4.1: callback.delay, seconds
    started = time.monotonic()
    assert (await monetix.post("/v2/payment/wallet/bkash/sale", body)).status_code == 200
    await asyncio.sleep(0.1)
    assert monetix.statuses(body["general"]["payment_id"]) == []
    await monetix.settle()
    assert time.monotonic() - started >= 1 and monetix.statuses(body["general"]["payment_id"]) == ["awaiting customer"]


async def test_without_any_callback_url_callbacks_are_abandoned_but_status_tells(monetix: Monetix):
    body = monetix.sale_body()
    del body["general"]["merchant_callback_url"]
    assert (await monetix.post("/v2/payment/wallet/bkash/sale", body)).status_code == 200
    await monetix.settle()
    [record] = (await monetix.admin.payment(body["general"]["payment_id"]))["callbacks"]
    assert record["delivery"] == "abandoned" and record["attempts"] == [] and "no merchant_callback_url" in record["note"]
    assert (await monetix.gate.status(body["general"]["payment_id"])).display_data


# --- status -----------------------------------------------------------------------------------


async def test_status_is_a_signed_snapshot_with_operations_and_early_requests_are_counted(monetix: Monetix):
    payment_id = await monetix.instructed()
    early = await monetix.gate.status(payment_id)  # same instant as the sale: a §3.4 violation
    assert early.status == "awaiting customer" and not early.final and early.signature_verified
    assert early.display_data[0].title == "account_number" and len(early.operations) == 1
    monetix.clock.advance(10)
    await monetix.gate.status(payment_id)
    raw = await monetix.post("/v2/payment/status", {"general": {"project_id": CONFIG.project_id,
                                                                "payment_id": payment_id}})
    data = raw.json()
    assert raw.status_code == 200 and verify(data, KEY) and "operation" not in data
    assert data["operations"][0]["status"] == "awaiting customer" and "status" not in data
    stats = await monetix.admin.stats()
    assert stats["early_status_requests"] == 1 and stats["status_requests"] == 3
    view = await monetix.admin.payment(payment_id)
    assert (view["status_requests"], view["early_status_requests"]) == (3, 1)


async def test_status_of_an_unknown_payment_is_a_signed_3061(monetix: Monetix):
    with pytest.raises(MonetixPaymentNotFound):
        await monetix.gate.status("never_sold")
    raw = await monetix.post("/v2/payment/status", {"general": {"project_id": CONFIG.project_id,
                                                                "payment_id": "never_sold"}})
    data = raw.json()
    assert raw.status_code == 200 and verify(data, KEY)
    assert data["payment"] == {"status": "error"}
    assert data["errors"] == [{"code": "3061", "message": "Transaction not found"}]


async def test_natural_signature_order_is_a_switch(make_monetix):
    m = make_monetix(signature_order="natural")
    payment_id = await m.instructed()
    assert (await m.gate.status(payment_id)).signature_verified


# --- faults: requests -------------------------------------------------------------------------


async def test_sale_http_error_before_commit_registers_nothing(monetix: Monetix):
    payment_id = monetix.new_id()
    await monetix.admin.add_fault("sale", "http_error", status=503, match={"payment_id": payment_id})
    with pytest.raises(MonetixResultUnknown, match="HTTP 503"):
        await monetix.sale(payment_id=payment_id)
    with pytest.raises(MonetixPaymentNotFound):
        await monetix.gate.status(payment_id)
    await monetix.sale(payment_id=payment_id)  # the fault was used up; the sale can be sent once


@pytest.mark.parametrize("kind", ["http_error", "drop_connection"])
async def test_sale_failing_after_commit_is_registered_and_found_by_status(monetix: Monetix, kind: str):
    payment_id = monetix.new_id()
    await monetix.admin.add_fault("sale", kind, commit=True, match={"payment_id": payment_id})
    with pytest.raises(MonetixResultUnknown):
        await monetix.sale(payment_id=payment_id)
    status = await monetix.gate.status(payment_id)
    assert status.status == "awaiting customer"
    with pytest.raises(MonetixDuplicatePayment):
        await monetix.sale(payment_id=payment_id)


async def test_error_code_fault_refuses_without_applying(monetix: Monetix):
    payment_id = await monetix.instructed()
    trx = await monetix.customer.pay_in_bkash(payment_id)
    await monetix.admin.add_fault("clarification", "error_code", code="3060", match={"payment_id": payment_id})
    with pytest.raises(MonetixRequestRejected) as refused:
        await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    assert refused.value.code == "3060"
    assert (await monetix.admin.payment(payment_id))["clarifications"] == []
    await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    await monetix.settle()
    assert monetix.statuses(payment_id)[-1] == "success"


async def test_delay_after_commit_applies_then_answers_late(monetix: Monetix):
    payment_id = await monetix.instructed()
    await monetix.admin.add_fault("status", "delay_after_commit", delay_seconds=0.3,
                                  match={"payment_id": payment_id})
    started = time.monotonic()
    assert (await monetix.gate.status(payment_id)).status == "awaiting customer"
    assert time.monotonic() - started >= 0.3


async def test_clarification_dropped_after_commit_is_resolved_by_status(monetix: Monetix):
    payment_id = await monetix.instructed()
    trx = await monetix.customer.pay_in_bkash(payment_id)
    await monetix.admin.add_fault("clarification", "drop_connection", commit=True, match={"payment_id": payment_id})
    with pytest.raises(MonetixResultUnknown, match="connection failed"):
        await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    assert (await monetix.gate.status(payment_id)).status == "success"


async def test_invalid_faults_are_refused(monetix: Monetix):
    for bad in ({"operation": "sale", "kind": "lose"},
                {"operation": "callback", "kind": "http_error"},
                {"operation": "status", "kind": "error_code"},
                {"operation": "sale", "kind": "http_error", "match": {"status": "success"}},
                {"operation": "callback", "kind": "lose", "match": {"status": "paid"}},
                {"operation": "callback", "kind": "delay"},
                {"operation": "sale", "kind": "delay_after_commit", "commit": False}):
        with pytest.raises(MonetixSandboxAdminError, match="422"):
            await monetix.admin.add_fault(**bad)
    assert await monetix.admin.faults() == []


# --- faults: callbacks ------------------------------------------------------------------------


async def test_callback_retries_until_the_merchant_answers_200(make_monetix):
    m = make_monetix(answers=[500, 503])
    payment_id = await m.instructed()
    assert [r["answered"] for r in m.received(payment_id)] == [500, 503, 200]
    [record] = (await m.admin.payment(payment_id))["callbacks"]
    assert [a["status_code"] for a in record["attempts"]] == [500, 503, 200] and record["delivered"]


async def test_callback_is_abandoned_after_the_bounded_schedule(make_monetix):
    m = make_monetix(answers=[500] * 10)
    payment_id = await m.sale()
    await m.settle()
    [record] = (await m.admin.payment(payment_id))["callbacks"]
    assert record["delivery"] == "abandoned" and len(record["attempts"]) == len(FAST_RETRIES) + 1
    assert (await m.admin.stats())["callbacks"]["abandoned"] == 1


async def test_merchant_refusing_the_signature_gets_retries(monetix: Monetix):
    # The merchant holds an old key for project 5678 (§4.1: a 400 on a bad signature means a retry).
    monetix.merchant.state.keys[OTHER_PROJECT] = "rotated-key"
    payment_id = monetix.new_id()
    await monetix.client(OTHER_KEY, OTHER_PROJECT).sale(MonetixSaleRequest(
        payment_id=payment_id, amount=20000, customer=CUSTOMER, account_number="01712345678"), CALLBACK_URL)
    await monetix.settle()
    [record] = (await monetix.admin.payment(payment_id, OTHER_PROJECT))["callbacks"]
    assert [a["status_code"] for a in record["attempts"]] == [400] * (len(FAST_RETRIES) + 1)
    assert record["delivery"] == "abandoned" and monetix.callbacks(payment_id) == []


async def test_duplicate_fault_delivers_the_same_signed_callback_twice(monetix: Monetix):
    payment_id = await monetix.instructed()
    await monetix.admin.add_fault("callback", "duplicate", match={"payment_id": payment_id, "status": "success"})
    await finish(monetix, payment_id)
    success = [b for b in monetix.callbacks(payment_id) if b["payment"]["status"] == "success"]
    assert len(success) == 2 and success[0] == success[1]
    kinds = [(c["status"], c["kind"]) for c in (await monetix.admin.payment(payment_id))["callbacks"]]
    assert kinds == [("awaiting customer", "callback"), ("success", "callback"), ("success", "duplicate")]
    assert [e["kind"] for e in await monetix.admin.ledger(payment_id)] == ["CUSTOMER_PAID", "SETTLED"]


async def test_lost_final_callback_leaves_the_truth_to_the_status_request(monetix: Monetix):
    payment_id = await monetix.instructed()
    await monetix.admin.add_fault("callback", "lose", match={"payment_id": payment_id, "status": "success"})
    trx = await monetix.customer.pay_in_bkash(payment_id)
    await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    await monetix.settle()
    assert monetix.statuses(payment_id) == ["awaiting customer"]
    status = await monetix.gate.status(payment_id)
    assert status.status == "success" and status.paid_poisha == 100000
    record = (await monetix.admin.payment(payment_id))["callbacks"][-1]
    assert record["status"] == "success" and record["delivery"] == "lost" and record["attempts"] == []


async def test_lose_matched_by_status_spares_the_other_callbacks(monetix: Monetix):
    await monetix.admin.add_fault("callback", "lose", match={"status": "decline"})
    payment_id = await monetix.instructed()
    assert monetix.statuses(payment_id) == ["awaiting customer"]
    assert len(await monetix.admin.faults()) == 1


async def test_delay_fault_holds_the_callback_back(monetix: Monetix):
    payment_id = await monetix.instructed()
    await monetix.admin.add_fault("callback", "delay", delay_seconds=0.3, match={"payment_id": payment_id})
    trx = await monetix.customer.pay_in_bkash(payment_id)
    started = time.monotonic()
    await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    await asyncio.sleep(0.1)
    assert monetix.statuses(payment_id) == ["awaiting customer"]
    await monetix.settle()
    assert time.monotonic() - started >= 0.3
    assert monetix.statuses(payment_id) == ["awaiting customer", "success"]


async def test_out_of_order_fault_redelivers_the_older_callback_after_the_final(monetix: Monetix):
    payment_id = await monetix.instructed()
    await monetix.admin.add_fault("callback", "out_of_order", match={"payment_id": payment_id, "status": "success"})
    await finish(monetix, payment_id)
    assert monetix.statuses(payment_id) == ["awaiting customer", "success", "awaiting customer"]
    first, _, stale = monetix.callbacks(payment_id)
    assert stale == first  # byte for byte the old callback, old operation date included
    view = await monetix.admin.payment(payment_id)
    assert view["callbacks"][-1]["kind"] == "out_of_order" and view["callbacks"][-1]["copy_of"] == view["callbacks"][0]["seq"]


async def test_late_replay_redelivers_the_final_callback_after_the_ack(monetix: Monetix):
    payment_id = await monetix.instructed()
    await monetix.admin.add_fault("callback", "late_replay", delay_seconds=0.2,
                                  match={"payment_id": payment_id, "status": "success"})
    trx = await monetix.customer.pay_in_bkash(payment_id)
    await monetix.gate.clarification(payment_id, {"transaction_id": trx})
    await asyncio.sleep(0.05)
    assert monetix.statuses(payment_id) == ["awaiting customer", "success"]
    await monetix.settle()
    assert monetix.statuses(payment_id) == ["awaiting customer", "success", "success"]
    assert (await monetix.admin.payment(payment_id))["callbacks"][-1]["kind"] == "late_replay"


async def test_callback_faults_count_down_their_times(monetix: Monetix):
    await monetix.admin.add_fault("callback", "lose", times=2)
    first, second, third = [await monetix.sale() for _ in range(3)]
    await monetix.settle()
    assert (monetix.statuses(first), monetix.statuses(second)) == ([], [])
    assert monetix.statuses(third) == ["awaiting customer"]


# --- Payment Page -----------------------------------------------------------------------------


def page_url(payment_id: str, *, key: str = KEY, amount: int = 100000, project_id: int = CONFIG.project_id,
             callback_url: str | None = CALLBACK_URL, account: str | None = None) -> str:
    config = MonetixPaymentPageConfig(base_url=SANDBOX, project_id=project_id, secret_key=key)
    return build_payment_page_url(config, PaymentPageParams(
        payment_id=payment_id, amount=amount, customer_id="customer_123", first_name="John", last_name="Doe",
        email="johndoe@example.com", account_number=account, merchant_callback_url=callback_url))


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = v
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"


async def test_payment_page_accepts_the_clients_link_and_shows_the_instructions(monetix: Monetix):
    payment_id = monetix.new_id("pp")
    page = await monetix.customer.open_payment_page(page_url(payment_id))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "1000 BDT" in page.text and CONFIG.receiver_account in page.text and payment_id in page.text
    framed = await monetix.customer.open_payment_page(page_url(payment_id) + "&frame_mode=popup")
    assert framed.status_code == 200  # frame_mode is outside the signature (§2.1); reopening is fine
    view = await monetix.admin.payment(payment_id)
    assert (view["channel"], view["status"], view["callbacks"]) == ("payment_page", "awaiting customer", [])


@pytest.mark.parametrize(("change", "code"), [
    ({"payment_amount": "1000"}, "3261"),
    ({"signature": None}, "3262"),
    ({"signature": ""}, "3262"),
    ({"project_id": "999"}, "2442"),
])
async def test_payment_page_refuses_a_bad_signature_or_project(monetix: Monetix, change: dict, code: str):
    page = await monetix.customer.open_payment_page(with_query(page_url(monetix.new_id("pp")), **change))
    assert page.status_code == 400 and f"<code id='code'>{code}</code>" in page.text


async def test_payment_page_signed_with_another_key_is_3261(monetix: Monetix):
    page = await monetix.customer.open_payment_page(page_url(monetix.new_id("pp"), key="wrong"))
    assert page.status_code == 400 and "3261" in page.text
    assert (await monetix.admin.stats())["invalid_signature_requests"] == 1


async def test_payment_page_refuses_a_payment_id_used_for_another_purchase(monetix: Monetix):
    payment_id = await monetix.sale()
    page = await monetix.customer.open_payment_page(page_url(payment_id))
    assert page.status_code == 400 and "3041" in page.text


async def test_payment_page_success_sends_the_signed_callback_with_the_paid_amount(monetix: Monetix):
    payment_id = monetix.new_id("pp")
    assert (await monetix.customer.open_payment_page(page_url(payment_id, account="123456789012"))).status_code == 200
    result = await monetix.customer.complete_payment_page(CONFIG.project_id, payment_id, amount=100000)
    assert result["status"] == "success" and re.fullmatch(r"[A-Z0-9]{10}", result["transaction_id"])
    await monetix.settle()
    [cb] = monetix.callbacks(payment_id)
    assert verify(cb, KEY) and cb["payment"]["status"] == "success" and cb["operation"]["code"] == "0"
    assert cb["account"] == {"number": "123456789012"} and cb["payment"]["sum"]["amount"] == 100000
    assert [e["kind"] for e in await monetix.admin.ledger(payment_id)] == ["CUSTOMER_PAID", "SETTLED"]
    finished = await monetix.customer.open_payment_page(page_url(payment_id, account="123456789012"))
    assert "success" in finished.text
    with pytest.raises(MonetixCustomerError, match="409"):
        await monetix.customer.complete_payment_page(CONFIG.project_id, payment_id)


async def test_payment_page_decline_and_changed_amount(make_monetix):
    m = make_monetix(amount_change_policy="decline")
    declined, short = m.new_id("pp"), m.new_id("pp")
    for payment_id in (declined, short):
        await m.customer.open_payment_page(page_url(payment_id))
    assert (await m.customer.complete_payment_page(CONFIG.project_id, declined, "decline"))["code"] == "20000"
    assert (await m.customer.complete_payment_page(CONFIG.project_id, short, amount=50000))["code"] == "20304"
    await m.settle()
    assert m.callbacks(declined)[0]["operation"]["message"] == "General decline"
    assert m.callbacks(short)[0]["payment"]["status"] == "decline"
    assert await m.admin.ledger(declined) == []


async def test_payment_page_without_a_callback_url_uses_the_default(make_monetix):
    m = make_monetix(default_callback_url=CALLBACK_URL)
    payment_id = m.new_id("pp")
    await m.customer.open_payment_page(page_url(payment_id, callback_url=None))
    await m.customer.complete_payment_page(CONFIG.project_id, payment_id)
    await m.settle()
    assert m.statuses(payment_id) == ["success"]


async def test_payment_page_fault_on_completion_still_sends_the_callback(monetix: Monetix):
    payment_id = monetix.new_id("pp")
    await monetix.customer.open_payment_page(page_url(payment_id))
    await monetix.admin.add_fault("payment_page", "http_error", status=502, commit=True,
                                  match={"payment_id": payment_id})
    with pytest.raises(MonetixCustomerError, match="502"):
        await monetix.customer.complete_payment_page(CONFIG.project_id, payment_id)
    await monetix.settle()
    assert monetix.statuses(payment_id) == ["success"]


async def test_gate_and_page_actions_do_not_mix(monetix: Monetix):
    gate_payment = await monetix.instructed()
    with pytest.raises(MonetixCustomerError, match="409"):
        await monetix.customer.complete_payment_page(CONFIG.project_id, gate_payment)
    page_payment = monetix.new_id("pp")
    await monetix.customer.open_payment_page(page_url(page_payment))
    with pytest.raises(MonetixCustomerError, match="409"):
        await monetix.customer.pay_in_bkash(page_payment)
    with pytest.raises(MonetixRequestRejected) as refused:
        await monetix.gate.clarification(page_payment, {"transaction_id": "ABCDE12345"})
    assert refused.value.code == "3060"


# --- admin ------------------------------------------------------------------------------------


async def test_reset_forgets_payments_ledger_and_faults(monetix: Monetix):
    payment_id = await monetix.instructed()
    await finish(monetix, payment_id)
    await monetix.admin.add_fault("status", "http_error")
    await monetix.admin.reset()
    assert await monetix.admin.faults() == [] and await monetix.admin.ledger() == []
    assert (await monetix.admin.stats())["payments"] == 0
    with pytest.raises(MonetixSandboxAdminError, match="404"):
        await monetix.admin.payment(payment_id)
    with pytest.raises(MonetixPaymentNotFound):
        await monetix.gate.status(payment_id)


# --- over real sockets ------------------------------------------------------------------------


async def test_real_callbacks_over_loopback_are_redelivered_until_acknowledged():
    merchant = merchant_app(answers=[500])
    sandbox = create_app(MonetixSandboxConfig(callback_retry_delays=[0.2, 0.5]))
    async with serve_asgi(sandbox) as sandbox_base, serve_asgi(merchant) as merchant_base, \
            httpx.AsyncClient(timeout=5) as http:
        m = Monetix(http, sandbox_base, None, merchant, FakeClock(), callback_url=f"{merchant_base}/monetix/callback")
        payment_id = await m.sale()
        instructions = await m.admin.wait_for_callback(payment_id, "awaiting customer")
        assert [a["status_code"] for a in instructions["attempts"]] == [500, 200]
        received = m.received(payment_id)
        assert [(r["verified"], r["answered"]) for r in received] == [(True, 500), (True, 200)]
        assert received[0]["body"] == received[1]["body"]

        trx = await m.customer.pay_in_bkash(payment_id)
        # The clarification is applied, but its answer comes after the client gave up (§3.3).
        await m.admin.add_fault("clarification", "delay_after_commit", delay_seconds=1.0,
                                match={"payment_id": payment_id})
        with pytest.raises(MonetixResultUnknown, match="no answer"):
            await m.client(KEY, timeout=0.3).clarification(payment_id, {"transaction_id": trx})
        final = await m.admin.wait_for_callback(payment_id, "success")
        assert verify(final["body"], KEY)
        assert m.statuses(payment_id) == ["awaiting customer", "awaiting customer", "success"]
        assert (await m.gate.status(payment_id)).status == "success"


async def test_served_sandbox_times_out_without_further_requests():
    clock = FakeClock()
    merchant = merchant_app()
    sandbox = create_app(MonetixSandboxConfig(expiry_check_interval_seconds=0.05, callback_retry_delays=[0.1]),
                         clock=clock)
    async with serve_asgi(sandbox) as sandbox_base, serve_asgi(merchant) as merchant_base, \
            httpx.AsyncClient(timeout=5) as http:
        m = Monetix(http, sandbox_base, None, merchant, clock, callback_url=f"{merchant_base}/monetix/callback")
        payment_id = await m.sale()
        await m.admin.wait_for_callback(payment_id, "awaiting customer")
        clock.advance(CONFIG.clarification_timeout_seconds)
        for _ in range(100):
            if m.statuses(payment_id)[-1] == "decline":
                break
            await asyncio.sleep(0.05)
        assert m.callbacks(payment_id)[-1]["operation"]["code"] == "20602"


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "sandbox.monetix", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout and "--secret-key" in result.stdout
    assert "--amount-change-policy" in result.stdout


def test_sandbox_does_not_depend_on_temporal():
    code = ("import sys, sandbox.monetix, sandbox.monetix.customer, sandbox.monetix.admin, "
            "sandbox.monetix.__main__; sys.exit('temporalio' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0
