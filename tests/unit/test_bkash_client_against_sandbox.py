"""providers/bkash.py against the bKash sandbox app in process (ASGITransport): the calls the
workflows do not make (search, refund, refund status) keep the wire shapes of the reference."""

import httpx

from providers.bkash import BkashClient, BkashCredentials
from providers.bkash_errors import (
    BkashMerchantConfigError,
    BkashRefundOverLimit,
    BkashUnexpectedResponse,
)
from sandbox.bkash import BkashSandboxConfig, create_app
from sandbox.bkash.customer import BkashCustomer

CFG = BkashSandboxConfig()


def client_for(app) -> tuple[BkashClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sandbox")
    creds = BkashCredentials(base_url="http://sandbox/v1.2.0-beta", app_key=CFG.app_key,
                             app_secret=CFG.app_secret, username=CFG.username, password=CFG.password)
    return BkashClient(http, creds), http


async def _captured_payment(client, http):
    created = await client.create_payment(amount_poisha=20000, invoice_number="INV-search",
                                          payer_reference="p", callback_url="http://shop/cb")
    await BkashCustomer(http).approve(created.bkash_url)
    executed = await client.execute_payment(created.payment_id)
    assert executed.transaction_status == "Authorized"
    captured = await client.capture_payment(created.payment_id)
    assert captured.transaction_status == "Completed"
    return created.payment_id, captured.trx_id


async def test_search_refund_and_refund_status_round_trip():
    app = create_app(CFG)
    client, http = client_for(app)
    payment_id, trx_id = await _captured_payment(client, http)
    found = await client.search_transaction(trx_id)
    assert found.trx_id == trx_id and found.amount in ("200.00", "200")
    refund = await client.refund_payment(payment_id=payment_id, trx_id=trx_id, amount_poisha=5000,
                                         sku="room-12", reason="late checkout discount")
    assert refund.completed and refund.refund_trx_id and refund.amount_poisha == 5000
    status = await client.refund_status(payment_id=payment_id, trx_id=trx_id)
    assert [r.refund_trx_id for r in status.refunds] == [refund.refund_trx_id]


async def test_unknown_trx_id_and_excess_refund_are_typed_errors():
    import pytest

    app = create_app(CFG)
    client, http = client_for(app)
    payment_id, trx_id = await _captured_payment(client, http)
    with pytest.raises(BkashUnexpectedResponse, match="2033"):
        await client.search_transaction("NOSUCHTRX1")
    with pytest.raises(BkashRefundOverLimit, match="2072"):
        await client.refund_payment(payment_id=payment_id, trx_id=trx_id, amount_poisha=999999,
                                    sku="x", reason="too much")


async def test_wrong_app_secret_is_a_configuration_error_that_names_the_fix():
    import pytest

    app = create_app(CFG)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sandbox")
    creds = BkashCredentials(base_url="http://sandbox/v1.2.0-beta", app_key=CFG.app_key,
                             app_secret="wrong", username=CFG.username, password=CFG.password)
    with pytest.raises(BkashMerchantConfigError, match="BKASH_APP_KEY"):
        await BkashClient(http, creds).query_payment("TR1")
