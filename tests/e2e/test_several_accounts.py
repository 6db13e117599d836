"""Several merchant accounts in one deployment (issue 11 §4): one worker and one endpoint, configured
from the environment like the real ones, serve two bKash credential sets (two bKash sandboxes, each
its own ledger and token counter) and two Monetix projects (one Monetix sandbox with both projects,
each its own key). Payments of both accounts run at once, the same invoice and the same payment_id
in both; each sandbox's ledger shows only its own account's money, each credential set made one
token call, each project's callbacks reached its own purchase, and the Web UI filters by account."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest_asyncio

from config import load_endpoint_settings, load_settings
from contracts.bkash import BkashPaymentRequest, BkashStage
from contracts.common import Provider
from contracts.monetix import MonetixPurchaseRequest, MonetixStage, PaymentPagePurchaseRequest
from contracts.refunds import RefundRequest, RefundStage
from embedded import serve_asgi
from endpoint.__main__ import monetix_projects
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from merchant_client import (
    payment_result,
    payment_state,
    purchase_result,
    refund,
    report_service_delivered,
    start_gate_purchase,
    start_payment,
    start_payment_page_purchase,
    submit_transaction_id,
)
from merchant_client.listing import list_payments
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer
from tests.conftest import LINK_SECRET, SANDBOX
from tests.support.monetix import CUSTOMER
from worker import build_activities, build_worker
from workflows import search_attributes as sa

BRAND2 = BkashSandboxConfig(app_key="brand2-app-key", app_secret="brand2-app-secret-value",
                            username="brand2-merchant", password="brand2-password-value")
MONETIX = MonetixSandboxConfig(project_id=1234, secret_key="default-project-key-value",
                               other_projects={5678: "brand2-project-key-value"})
[(BRAND2_PROJECT, BRAND2_KEY)] = MONETIX.other_projects.items()


def worker_env(default_url: str, brand2_url: str, monetix_url: str, endpoint_url: str) -> dict:
    return {
        "BKASH_BASE_URL": f"{default_url}/v1.2.0-beta", "BKASH_APP_KEY": SANDBOX.app_key,
        "BKASH_APP_SECRET": SANDBOX.app_secret, "BKASH_USERNAME": SANDBOX.username,
        "BKASH_PASSWORD": SANDBOX.password, "BKASH_TIMEOUT_SECONDS": "3",
        "BKASH_TOKEN_CACHE_FILE": "",  # this test's own tokens, in the process
        "MONETIX_PROJECT_ID": str(MONETIX.project_id), "MONETIX_SECRET_KEY": MONETIX.secret_key,
        "MONETIX_BASE_URL": monetix_url, "MONETIX_PAYMENT_PAGE_URL": monetix_url,
        "PAYMENTS_ACCOUNTS": "brand2",
        "BKASH__BRAND2__BASE_URL": f"{brand2_url}/v1.2.0-beta",
        "BKASH__BRAND2__APP_KEY": BRAND2.app_key, "BKASH__BRAND2__APP_SECRET": BRAND2.app_secret,
        "BKASH__BRAND2__USERNAME": BRAND2.username, "BKASH__BRAND2__PASSWORD": BRAND2.password,
        "MONETIX__BRAND2__PROJECT_ID": str(BRAND2_PROJECT), "MONETIX__BRAND2__SECRET_KEY": BRAND2_KEY,
        "MONETIX__BRAND2__BASE_URL": monetix_url,
        "PAYMENTS_CALLBACK_BASE_URL": endpoint_url, "PAYMENTS_LINK_SECRET": LINK_SECRET,
    }


class Deployment:
    def __init__(self, client, task_queue, endpoint_url, settings, default, brand2, monetix,
                 customer, monetix_customer):
        self.client, self.task_queue, self.endpoint_url = client, task_queue, endpoint_url
        self.settings = settings
        self.bkash = {"default": default, "brand2": brand2}
        self.monetix, self.customer, self.monetix_customer = monetix, customer, monetix_customer


@pytest_asyncio.fixture
async def deployment(dev_env, http):
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as default_url, \
            serve_asgi(create_bkash_sandbox(BRAND2)) as brand2_url, \
            serve_asgi(create_monetix_sandbox(MONETIX)) as monetix_url:
        # The endpoint's own settings, from the same environment (it reads only what it needs).
        env = worker_env(default_url, brand2_url, monetix_url, "http://unused")
        endpoint_settings = load_endpoint_settings(env)
        assert endpoint_settings.monetix_accounts == {MONETIX.project_id: "default",
                                                      BRAND2_PROJECT: "brand2"}
        app = create_endpoint(dev_env.client, monetix_projects=monetix_projects(endpoint_settings),
                              monetix_accounts=endpoint_settings.monetix_accounts,
                              links=ResultLinks(LINK_SECRET.encode()))
        async with serve_asgi(app) as endpoint_url:
            task_queue = f"accounts-{uuid.uuid4().hex[:8]}"
            settings = load_settings({**worker_env(default_url, brand2_url, monetix_url,
                                                   endpoint_url), "PAYMENTS_TASK_QUEUE": task_queue})
            async with build_worker(dev_env.client, task_queue, build_activities(settings, http)), \
                    httpx.AsyncClient(timeout=30) as browser:
                yield Deployment(dev_env.client, task_queue, endpoint_url, settings,
                                 BkashSandboxAdmin(default_url, http),
                                 BkashSandboxAdmin(brand2_url, http),
                                 MonetixSandboxAdmin(monetix_url, http), BkashCustomer(browser),
                                 MonetixBkashCustomer(browser, monetix_url))


async def _bkash_captured(d: Deployment, invoice: str, amount: int, account: str):
    req = BkashPaymentRequest(invoice_number=invoice, amount_poisha=amount,
                              callback_base_url=d.endpoint_url, account_id=account)
    url = await start_payment(d.client, req, task_queue=d.task_queue)
    assert url.stage is BkashStage.AWAITING_APPROVAL, url.detail
    journey = await d.customer.approve(url.bkash_url)
    assert "authorized" in journey.final_text.lower()
    for _ in range(100):
        if (await payment_state(d.client, invoice, account_id=account)).stage \
                is BkashStage.AUTHORIZED:
            break
        await asyncio.sleep(0.05)
    await report_service_delivered(d.client, invoice, account_id=account)
    result = await payment_result(d.client, invoice, account_id=account)
    assert result.stage is BkashStage.CAPTURED, result.detail
    return req, url


async def _monetix_paid(d: Deployment, payment_id: str, amount: int, account: str, project: int):
    req = MonetixPurchaseRequest(sale={"payment_id": payment_id, "amount_poisha": amount,
                                       "customer": CUSTOMER, "account_number": "01712345678"},
                                 callback_base_url=d.endpoint_url, account_id=account)
    shown = await start_gate_purchase(d.client, req, task_queue=d.task_queue)
    assert shown.stage is MonetixStage.AWAITING_TRANSACTION_ID, shown.detail
    trx = await d.monetix_customer.pay_in_bkash(payment_id, project_id=project)
    await submit_transaction_id(d.client, payment_id, trx, account_id=account)
    result = await purchase_result(d.client, payment_id, account_id=account)
    assert result.outcome is MonetixStage.SUCCESS and result.paid_poisha == amount, result.detail
    return req


def money(ledger: list[dict], amount_key: str) -> list[tuple[str, int]]:
    return [(e["kind"], e[amount_key]) for e in ledger]


async def test_two_accounts_side_by_side_never_share_a_token_a_ledger_or_a_callback(deployment):
    d = deployment
    invoice = f"INV-{uuid.uuid4().hex[:8]}"      # the same invoice in both bKash accounts
    payment_id = f"mx-{uuid.uuid4().hex[:10]}"   # the same payment_id in both Monetix projects
    (default_bkash, _), (brand2_bkash, brand2_url), default_mx, brand2_mx = await asyncio.gather(
        _bkash_captured(d, invoice, 50000, "default"),
        _bkash_captured(d, invoice, 70000, "brand2"),
        _monetix_paid(d, payment_id, 100000, "default", MONETIX.project_id),
        _monetix_paid(d, payment_id, 200000, "brand2", BRAND2_PROJECT))
    assert len({default_bkash.workflow_id, brand2_bkash.workflow_id,
                default_mx.workflow_id, brand2_mx.workflow_id}) == 4
    # Existing ids are unchanged for the default account.
    assert default_bkash.workflow_id == f"bkash-{invoice}"
    assert default_mx.workflow_id == f"monetix-{payment_id}"

    # Refunds go through the payment's own account.
    bkash_refund, monetix_refund = await asyncio.gather(
        refund(d.client, RefundRequest(provider=Provider.BKASH, payment_key=invoice,
                                       refund_id="RF-B2", amount_poisha=20000, reason="late",
                                       sku="room", account_id="brand2"),
               task_queue=d.task_queue, callback_base_url=d.endpoint_url),
        refund(d.client, RefundRequest(provider=Provider.MONETIX, payment_key=payment_id,
                                       refund_id="MRF-B2", amount_poisha=50000, reason="late",
                                       account_id="brand2"),
               task_queue=d.task_queue, callback_base_url=d.endpoint_url))
    assert bkash_refund.stage is monetix_refund.stage is RefundStage.SUCCEEDED

    # Each bKash sandbox holds its own account's money only, and made one token call.
    for account, amount, refunds in (("default", 50000, []), ("brand2", 70000, [20000])):
        sandbox = d.bkash[account]
        assert money(await sandbox.ledger(), "amount_poisha") == [
            ("AUTHORIZE", amount), ("CAPTURE", amount)] + [("REFUND", r) for r in refunds]
        stats = await sandbox.stats()
        assert (stats["grant_calls"], stats["refresh_calls"]) == (1, 0), account
    assert [r["amount_poisha"] for r in await d.bkash["brand2"].refunds()] == [20000]
    assert await d.bkash["default"].refunds() == []
    # Each Monetix project's ledger holds its own purchase (one payment_id, two projects).
    assert money(await d.monetix.ledger(project_id=MONETIX.project_id), "amount") == [
        ("CUSTOMER_PAID", 100000), ("SETTLED", 100000)]
    assert money(await d.monetix.ledger(project_id=BRAND2_PROJECT), "amount") == [
        ("CUSTOMER_PAID", 200000), ("SETTLED", 200000), ("REFUND", 50000)]
    for project in (MONETIX.project_id, BRAND2_PROJECT):
        callbacks = (await d.monetix.payment(payment_id, project))["callbacks"]
        assert callbacks and all(c["delivered"] for c in callbacks)

    # The Web UI's filter: PaymentAccount = "brand2" lists brand2's payments and ledgers only.
    query = f'PaymentAccount = "brand2" AND MerchantInvoice IN ("{invoice}", "{payment_id}")'
    for _ in range(100):
        ids = {wf.id async for wf in d.client.list_workflows(query)}
        if len(ids) == 4:
            break
        await asyncio.sleep(0.1)
    assert ids == {brand2_bkash.workflow_id, brand2_mx.workflow_id,
                   f"refunds-{brand2_bkash.workflow_id}", f"refunds-{brand2_mx.workflow_id}"}
    desc = await d.client.get_workflow_handle(default_bkash.workflow_id).describe()
    assert desc.typed_search_attributes.get(sa.PAYMENT_ACCOUNT) == "default"
    rows = await list_payments(d.client, "captured", Provider.BKASH, account_id="brand2")
    assert [r["workflow_id"] for r in rows if r["invoice"] == invoice] == [brand2_bkash.workflow_id]
    # No secret of either account in what the Web UI shows.
    for wf in [brand2_bkash, brand2_mx, default_bkash, default_mx]:
        shown = str((await d.client.get_workflow_handle(wf.workflow_id).describe())
                    .typed_search_attributes)
        assert not any(secret in shown for secret in d.settings.secrets)


async def test_a_payment_naming_an_account_the_worker_lacks_fails_before_any_money_moves(
        deployment):
    d = deployment
    invoice, payment_id = f"INV-{uuid.uuid4().hex[:8]}", f"mx-{uuid.uuid4().hex[:10]}"
    url = await start_payment(d.client, BkashPaymentRequest(
        invoice_number=invoice, amount_poisha=50000, callback_base_url=d.endpoint_url,
        account_id="brand9"), task_queue=d.task_queue)
    assert url.stage is BkashStage.FAILED
    assert "'brand9'" in url.detail and "no bKash settings" in url.detail
    result = await payment_result(d.client, invoice, account_id="brand9")
    assert result.stage is BkashStage.FAILED and "'brand9'" in result.detail
    shown = await start_gate_purchase(d.client, MonetixPurchaseRequest(
        sale={"payment_id": payment_id, "amount_poisha": 100000, "customer": CUSTOMER},
        callback_base_url=d.endpoint_url, account_id="brand9"), task_queue=d.task_queue)
    assert shown.stage is MonetixStage.FAILED and "'brand9'" in shown.detail
    outcome = await purchase_result(d.client, payment_id, account_id="brand9")
    assert outcome.outcome is MonetixStage.FAILED
    page = await start_payment_page_purchase(d.client, PaymentPagePurchaseRequest(
        params={"payment_id": f"{payment_id}-page", "amount_poisha": 50000, "customer_id": "c-1",
                "first_name": "Rahim", "last_name": "Uddin", "email": "rahim@example.com"},
        callback_base_url=d.endpoint_url, account_id="brand9"), task_queue=d.task_queue)
    assert page.stage is MonetixStage.FAILED and page.payment_page_url is None
    assert "'brand9'" in page.detail
    # Nothing reached any provider.
    for sandbox in d.bkash.values():
        assert (await sandbox.calls(invoice=invoice))["create"] == 0
    assert await d.monetix.payments() == [] or all(
        p["payment_id"] != payment_id for p in await d.monetix.payments())
