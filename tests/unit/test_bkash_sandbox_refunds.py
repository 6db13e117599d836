"""The bKash sandbox refunds as bKash does (bkash-api.md §2 #9/#10, §9, §11; production.md §1):
partial and multiple refunds within what is left, the refund window, the refund codes, refund
status v1 (the latest refund) and v2 (every refund), v2's own paths and HTTP 400 envelope, REFUND
ledger lines, the admin views and knobs, and faults on refund and refund status as separate
operations. Driven over HTTP as a merchant's client sends it, and with the project's BkashClient."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from providers.bkash import BkashClient, BkashCredentials, BkashPaths
from providers.bkash_errors import (
    BkashNoResponse,
    BkashRefundMerchantConfig,
    BkashRefundNotRefundable,
    BkashRefundOverLimit,
    BkashRefundWindowPassed,
)
from sandbox.bkash import BkashSandboxConfig, create_app
from sandbox.bkash.admin import BkashSandboxAdminError
from sandbox.bkash.customer import BkashCustomer
from tests.unit.test_bkash_sandbox import (  # noqa: F401 - fixtures
    CONFIG,
    VERSION,
    Bkash,
    bkash,
    make_bkash,
)

DAY = 24 * 3600
V2_REFUND = "/v2/tokenized-checkout/refund/payment/transaction"
V2_STATUS = "/v2/tokenized-checkout/refund/payment/status"
V1_KEYS = ["statusCode", "statusMessage", "originalTrxID", "refundTrxID", "transactionStatus",
           "amount", "currency", "charge", "completedTime"]
V2_KEYS = ["originalTrxId", "refundTrxId", "refundTransactionStatus", "originalTrxAmount",
           "refundAmount", "currency", "completedTime", "sku", "reason"]


async def sale(b: Bkash, amount: str = "1000.00") -> tuple[str, str]:
    """A completed sale: (paymentID, trxID)."""
    created = await b.approved(intent="sale", amount=amount)
    executed = (await b.call("execute", {"paymentID": created["paymentID"]})).json()
    assert executed["transactionStatus"] == "Completed", executed
    return executed["paymentID"], executed["trxID"]


async def refund(b: Bkash, pid: str, trx: str, amount: str, **fields: object) -> dict:
    body = {"paymentID": pid, "trxID": trx, "amount": amount, "sku": "room-12",
            "reason": "changed plans", **fields}
    return (await b.call("payment/refund", {k: v for k, v in body.items() if v is not ...})).json()


async def status_v1(b: Bkash, pid: str, trx: str) -> dict:
    return (await b.call("payment/refund", {"paymentID": pid, "trxID": trx})).json()


async def v2(b: Bkash, path: str, body: dict, *, base: str = "", token: str | None = None
             ) -> httpx.Response:
    """A v2 call at the host's root (base "") or under the API version (base "/v1.2.0-beta")."""
    if token is None:
        if b.token is None:
            b.token = (await b.grant()).json()["id_token"]
        token = b.token
    return await b.http.post(f"{b.base}{base}{path}", json=body,
                             headers={"Authorization": token, "X-App-Key": CONFIG.app_key})


def v2_refund_body(pid: str, trx: str, amount: str, **fields: object) -> dict:
    return {"paymentId": pid, "trxId": trx, "refundAmount": amount, "sku": "room-12",
            "reason": "changed plans", **fields}


def v2_error(code: str, message: str) -> dict:
    slug = "_".join("".join(c if c.isalnum() else " " for c in message.lower()).split())
    return {"internalCode": slug, "externalCode": code, "errorMessageEn": message,
            "errorMessageBn": None}


def after_days(b: Bkash, days: float) -> None:
    """Move the sandbox's clock; the old id_token has expired by then, so grant again."""
    b.clock.advance(days * DAY)
    b.token = None


def refund_lines(ledger: list[dict]) -> list[tuple[str, int]]:
    return [(e["amount"], e["amount_poisha"]) for e in ledger if e["kind"] == "REFUND"]


# --- partial and multiple refunds, the remaining amount, the ledger -----------------------------


async def test_partial_refunds_add_up_to_the_amount_and_each_is_a_ledger_line(bkash: Bkash):
    pid, trx = await sale(bkash, "1000.00")
    first = await refund(bkash, pid, trx, "300.00")
    assert list(first) == V1_KEYS  # the [OBS] 2021 answer's keys, in its order
    assert (first["statusCode"], first["originalTrxID"], first["transactionStatus"], first["amount"],
            first["currency"], first["charge"]) == ("0000", trx, "Completed", "300.00", "BDT", "0.00")
    second = await refund(bkash, pid, trx, "200")
    assert second["amount"] == "200" and second["refundTrxID"] != first["refundTrxID"]

    ledger = await bkash.admin.ledger(payment_id=pid)
    assert [(e["kind"], e["amount_poisha"]) for e in ledger] == [
        ("SALE", 100000), ("REFUND", 30000), ("REFUND", 20000)]
    line = ledger[1]
    assert line == {"seq": line["seq"], "kind": "REFUND", "payment_id": pid,
                    "merchant_invoice": line["merchant_invoice"], "amount": "300.00",
                    "amount_poisha": 30000, "trx_id": first["refundTrxID"], "at": line["at"],
                    "original_trx_id": trx, "refund_trx_id": first["refundTrxID"]}

    view = await bkash.admin.payment(pid)
    assert (view["refunded"], view["refunded_poisha"], view["refundable"], view["refundable_poisha"]) == (
        "500.00", 50000, "500.00", 50000)
    assert view["refund_window_ends_at"] == view["completed_at"] + 15 * DAY
    found = (await bkash.call("general/searchTransaction", {"trxID": trx})).json()
    assert found["maxRefundableAmount"] == "500.00"

    rest = await refund(bkash, pid, trx, "500.00")
    assert rest["statusCode"] == "0000"
    assert (await bkash.admin.payment(pid))["refundable_poisha"] == 0
    assert (await bkash.call("general/searchTransaction", {"trxID": trx})).json()[
        "maxRefundableAmount"] == "0.00"


async def test_more_than_what_is_left_is_2072_and_moves_no_money(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    assert (await refund(bkash, pid, trx, "100.01")) == {"statusCode": "2072",
                                                         "statusMessage": "Refund amount not valid"}
    assert (await refund(bkash, pid, trx, "60.00"))["statusCode"] == "0000"
    assert (await refund(bkash, pid, trx, "40.01"))["statusCode"] == "2072"
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == [("60.00", 6000)]


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "1.234", "abc", "", True, [1]])
async def test_an_amount_that_is_no_amount_is_2072(bkash: Bkash, amount: object):
    pid, trx = await sale(bkash, "100.00")
    assert (await refund(bkash, pid, trx, amount))["statusCode"] == "2072"  # type: ignore[arg-type]
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == []


async def test_a_fully_refunded_payment_refunded_again_for_the_same_amount_answers_its_refund(
        bkash: Bkash):
    # [OBS] 2021 logs, twice: the repeat answered the first refund again, moving nothing.
    pid, trx = await sale(bkash, "10")
    first = await refund(bkash, pid, trx, "10")
    bkash.clock.advance(60)
    again = await refund(bkash, pid, trx, "10", sku="other", reason="again")
    assert again == first
    assert (await refund(bkash, pid, trx, "5"))["statusCode"] == "2072"
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == [("10.00", 1000)]
    assert [r["repeats"] for r in await bkash.admin.refunds(payment_id=pid)] == [1]


async def test_a_partly_refunded_payment_takes_a_second_refund_of_the_same_amount(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    one, two = await refund(bkash, pid, trx, "30.00"), await refund(bkash, pid, trx, "30.00")
    assert one["refundTrxID"] != two["refundTrxID"]
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == [("30.00", 3000), ("30.00", 3000)]


async def test_a_captured_authorization_is_refundable_from_its_capture(bkash: Bkash):
    executed = await bkash.authorized(amount="250.00")
    pid, trx = executed["paymentID"], executed["trxID"]
    assert (await refund(bkash, pid, trx, "50.00")) == {"statusCode": "2127",
                                                        "statusMessage": "Transaction not yet completed"}
    assert (await bkash.call("payment/confirm/capture", {"paymentID": pid})).json()["statusCode"] == "0000"
    assert (await refund(bkash, pid, trx, "50.00"))["originalTrxID"] == trx
    assert [(e["kind"], e["amount_poisha"]) for e in await bkash.admin.ledger(payment_id=pid)] == [
        ("AUTHORIZE", 25000), ("CAPTURE", 25000), ("REFUND", 5000)]


async def test_at_most_ten_refunds_then_2074_unless_the_limit_is_lifted(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    for _ in range(10):
        assert (await refund(bkash, pid, trx, "1.00"))["statusCode"] == "0000"
    assert (await refund(bkash, pid, trx, "1.00")) == {
        "statusCode": "2074", "statusMessage": "The transaction cannot be reversed"}
    assert await bkash.admin.refund_settings(max_refunds=0) == {"window_seconds": 15 * DAY,
                                                                "max_refunds": 0}
    assert (await refund(bkash, pid, trx, "1.00"))["statusCode"] == "0000"
    assert len(refund_lines(await bkash.admin.ledger(payment_id=pid))) == 11


# --- the window ----------------------------------------------------------------------------------


async def test_the_window_is_15_days_from_completion_then_2071(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    after_days(bkash, 15)
    assert (await refund(bkash, pid, trx, "10.00"))["statusCode"] == "0000"  # exactly 15 days: in
    bkash.clock.advance(1)
    assert (await refund(bkash, pid, trx, "10.00")) == {
        "statusCode": "2071", "statusMessage": "Refund after specified days not allowed"}
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == [("10.00", 1000)]


async def test_aging_a_payment_puts_it_past_the_window_without_moving_the_clock(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    before = await bkash.admin.payment(pid)
    aged = await bkash.admin.age_payment(pid, days=16)
    assert aged["completed_at"] == before["completed_at"] - 16 * DAY
    assert aged["created_at"] == before["created_at"] - 16 * DAY
    assert aged["refund_window_ends_at"] < bkash.clock.now
    assert (await refund(bkash, pid, trx, "10.00"))["statusCode"] == "2071"
    other_pid, other_trx = await sale(bkash, "100.00")  # other payments keep their age
    await bkash.admin.age_payment(other_pid, seconds=15 * DAY - 1)
    assert (await refund(bkash, other_pid, other_trx, "10.00"))["statusCode"] == "0000"


async def test_aging_refuses_a_payment_without_a_completion_an_unknown_one_and_a_bad_body(
        bkash: Bkash):
    executed = await bkash.authorized()
    with pytest.raises(BkashSandboxAdminError, match="409.*Authorized"):
        await bkash.admin.age_payment(executed["paymentID"], days=1)
    with pytest.raises(BkashSandboxAdminError, match="404"):
        await bkash.admin.age_payment("TR0011nope", days=1)
    pid, _ = await sale(bkash)
    for body in ({}, {"seconds": 1, "days": 1}, {"days": -1}, {"weeks": 1}):
        response = await bkash.http.post(f"{bkash.base}/admin/payments/{pid}/age", json=body)
        assert response.status_code == 422, body


async def test_the_window_is_a_setting_and_reset_restores_it(bkash: Bkash):
    assert await bkash.admin.refund_settings() == {"window_seconds": 15 * DAY, "max_refunds": 10}
    await bkash.admin.refund_settings(window_seconds=60)
    pid, trx = await sale(bkash, "100.00")
    bkash.clock.advance(61)
    assert (await refund(bkash, pid, trx, "10.00"))["statusCode"] == "2071"
    for bad in ({"window_seconds": 0}, {"max_refunds": -1}, {"window": 5}):
        response = await bkash.http.post(f"{bkash.base}/admin/refund-settings", json=bad)
        assert response.status_code == 422, bad
    await bkash.admin.reset()
    assert await bkash.admin.refund_settings() == {"window_seconds": 15 * DAY, "max_refunds": 10}


# --- the codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "code", "message"), [
    ({"sku": ...}, "2073", "Invalid SKU"),  # laravel-bkash PR #8: no sku, "Invalid SKU"
    ({"sku": None}, "2073", "Invalid SKU"),
    ({"sku": ""}, "2073", "Invalid SKU"),
    ({"sku": "   "}, "2073", "Invalid SKU"),
    ({"sku": "a<b"}, "2073", "Invalid SKU"),
    ({"sku": "s" * 256}, "2075", "SKU Character Limit Exceeded"),
    ({"reason": ...}, "2078", "Invalid Reason"),
    ({"reason": ""}, "2078", "Invalid Reason"),
    ({"reason": "tab\there"}, "2078", "Invalid Reason"),
    ({"reason": "r" * 256}, "2076", "Reason Character Limit Exceeded"),
    ({"trxID": ...}, "2065", "Mendatory field missing"),
    ({"trxID": "NOTTHISONE"}, "2077", "Invalid TrxID"),
    ({"paymentID": None}, "2002", "Invalid Payment ID"),  # [OBS] 2021
    ({"paymentID": "TR0011unknown1763700000000"}, "2002", "Invalid Payment ID"),
])
async def test_refund_codes(bkash: Bkash, fields: dict, code: str, message: str):
    pid, trx = await sale(bkash, "100.00")
    assert (await refund(bkash, pid, trx, "10.00", **fields)) == {"statusCode": code,
                                                                   "statusMessage": message}
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == []


async def test_sku_and_reason_of_255_characters_are_taken(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    answer = await refund(bkash, pid, trx, "10.00", sku="s" * 255, reason="r" * 255)
    assert answer["statusCode"] == "0000"
    [made] = await bkash.admin.refunds(payment_id=pid)
    assert (made["sku"], made["reason"], made["api"]) == ("s" * 255, "r" * 255, "v1")


async def test_the_trx_id_of_another_payment_or_of_a_refund_is_2077(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    _, other_trx = await sale(bkash, "100.00")
    assert (await refund(bkash, pid, trx, "10.00", trxID=other_trx))["statusCode"] == "2077"
    made = await refund(bkash, pid, trx, "10.00")
    assert (await refund(bkash, pid, made["refundTrxID"], "10.00"))["statusCode"] == "2077"


async def test_a_voided_authorization_is_2074(bkash: Bkash):
    executed = await bkash.authorized()
    pid, trx = executed["paymentID"], executed["trxID"]
    await bkash.call("payment/confirm/void", {"paymentID": pid})
    assert (await refund(bkash, pid, trx, "10.00"))["statusCode"] == "2074"


# --- refund status, v1 ---------------------------------------------------------------------------


async def test_v1_status_answers_the_latest_refund_in_the_refund_shape(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    assert (await status_v1(bkash, pid, trx)) == {"statusCode": "2002",
                                                  "statusMessage": "Invalid Payment ID"}
    await refund(bkash, pid, trx, "10.00")
    bkash.clock.advance(5)
    latest = await refund(bkash, pid, trx, "20.00")
    assert await status_v1(bkash, pid, trx) == latest
    assert (await status_v1(bkash, pid, "WRONGTRX00"))["statusCode"] == "2077"
    assert (await status_v1(bkash, "TR0011unknown1763700000000", trx))["statusCode"] == "2002"


async def test_v1_status_body_as_the_official_plugin_sends_it_with_nulls(bkash: Bkash):
    # bKash-for-woocommerce query_refund(): refund(null, paymentID, trxID, null, null) → the JSON
    # body has "amount": null, "sku": null, "reason": null: a status query, not a refund.
    pid, trx = await sale(bkash, "100.00")
    made = await refund(bkash, pid, trx, "10.00")
    body = {"amount": None, "paymentID": pid, "trxID": trx, "sku": None, "reason": None}
    assert (await bkash.call("payment/refund", body)).json() == made
    assert (await bkash.admin.calls(payment_id=pid))["refund_status"] == 1


async def test_v1_status_needs_the_trx_id_and_reports_nothing_for_an_authorization(bkash: Bkash):
    executed = await bkash.authorized()
    pid, trx = executed["paymentID"], executed["trxID"]
    assert (await status_v1(bkash, pid, trx))["statusCode"] == "2002"
    assert (await bkash.call("payment/refund", {"paymentID": pid})).json()["statusCode"] == "2065"


# --- v2 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["", f"/{VERSION}"])
async def test_v2_refund_and_status_at_the_root_and_under_the_version(bkash: Bkash, base: str):
    pid, trx = await sale(bkash, "1000.00")
    empty = await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx}, base=base)
    assert empty.status_code == 200
    assert empty.json() == {"originalTrxId": trx, "originalTrxAmount": "1000.00",
                            "originalTrxCompletedTime": empty.json()["originalTrxCompletedTime"],
                            "refundTransactions": []}

    first = await v2(bkash, V2_REFUND, v2_refund_body(pid, trx, "300.00"), base=base)
    assert first.status_code == 200 and list(first.json()) == V2_KEYS
    answer = first.json()
    assert (answer["originalTrxId"], answer["refundTransactionStatus"], answer["originalTrxAmount"],
            answer["refundAmount"], answer["currency"], answer["sku"], answer["reason"]) == (
        trx, "Completed", "1000.00", "300.00", "BDT", "room-12", "changed plans")
    assert "statusCode" not in answer  # v2 answers without the v1 envelope
    bkash.clock.advance(10)
    second = (await v2(bkash, V2_REFUND, v2_refund_body(pid, trx, "200.00"), base=base)).json()

    status = (await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx}, base=base)).json()
    assert status["refundTransactions"] == [
        {"refundTrxId": answer["refundTrxId"], "refundTransactionStatus": "Completed",
         "refundAmount": "300.00", "completedTime": answer["completedTime"]},
        {"refundTrxId": second["refundTrxId"], "refundTransactionStatus": "Completed",
         "refundAmount": "200.00", "completedTime": second["completedTime"]}]
    ledger = await bkash.admin.ledger(payment_id=pid)
    assert [(e["kind"], e.get("refund_trx_id")) for e in ledger] == [
        ("SALE", None), ("REFUND", answer["refundTrxId"]), ("REFUND", second["refundTrxId"])]
    assert [r["api"] for r in await bkash.admin.refunds(payment_id=pid)] == ["v2", "v2"]


@pytest.mark.parametrize(("body", "code", "message"), [
    ({"refundAmount": "1000.01"}, "2072", "Refund amount not valid"),
    ({"sku": ...}, "2073", "Invalid SKU"),
    ({"reason": "r" * 256}, "2076", "Reason Character Limit Exceeded"),
    ({"trxId": "NOTTHISONE"}, "2077", "Invalid TrxID"),
    ({"refundAmount": ...}, "2065", "Mendatory field missing"),
    # v1's spelling on the v2 URL: v2 has no paymentID, so none was sent (§9: paymentId/trxId).
    ({"paymentId": ..., "paymentID": "<pid>"}, "2002", "Invalid Payment ID"),
])
async def test_v2_refusals_are_http_400_with_the_v2_envelope(bkash: Bkash, body: dict, code: str,
                                                             message: str):
    pid, trx = await sale(bkash, "1000.00")
    sent = {k: (pid if v == "<pid>" else v) for k, v in v2_refund_body(pid, trx, "10.00", **body).items()
            if v is not ...}
    response = await v2(bkash, V2_REFUND, sent)
    assert (response.status_code, response.json()) == (400, v2_error(code, message))
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == []


async def test_v2_refusals_for_the_payments_state_and_age(bkash: Bkash):
    executed = await bkash.authorized()
    pid, trx = executed["paymentID"], executed["trxID"]
    response = await v2(bkash, V2_REFUND, v2_refund_body(pid, trx, "10.00"))
    assert (response.status_code, response.json()["externalCode"]) == (400, "2127")
    status = await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx})
    assert (status.status_code, status.json()["externalCode"]) == (400, "2127")
    sold, sold_trx = await sale(bkash)
    await bkash.admin.age_payment(sold, days=20)
    late = await v2(bkash, V2_REFUND, v2_refund_body(sold, sold_trx, "10.00"))
    assert late.json() == v2_error("2071", "Refund after specified days not allowed")
    broken = await bkash.http.post(f"{bkash.base}{V2_REFUND}", content=b"not json",
                                   headers={"Authorization": bkash.token or "", "X-App-Key": CONFIG.app_key})
    assert (broken.status_code, broken.json()["externalCode"]) == (400, "2025")


async def test_v2_needs_the_same_token_as_v1(bkash: Bkash):
    pid, trx = await sale(bkash)
    for base in ("", f"/{VERSION}"):
        response = await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx}, base=base, token="nope")
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
        foreign = await bkash.http.post(f"{bkash.base}{base}{V2_STATUS}", json={},
                                        headers={"Authorization": bkash.token or "", "X-App-Key": "other"})
        assert foreign.status_code == 403


async def test_v1_and_v2_refunds_share_one_remaining_amount_and_one_history(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    await refund(bkash, pid, trx, "60.00")
    over = await v2(bkash, V2_REFUND, v2_refund_body(pid, trx, "40.01"))
    assert over.json()["externalCode"] == "2072"
    made = (await v2(bkash, V2_REFUND, v2_refund_body(pid, trx, "40.00"))).json()
    assert (await status_v1(bkash, pid, trx))["refundTrxID"] == made["refundTrxId"]
    listed = (await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx})).json()
    assert [r["refundAmount"] for r in listed["refundTransactions"]] == ["60.00", "40.00"]
    reversal = (await bkash.call("general/searchTransaction", {"trxID": made["refundTrxId"]})).json()
    assert (reversal["transactionType"], reversal["amount"]) == ("bKash Checkout Reversal via API", "40.00")


# --- faults: refund and refund status are separate operations ---------------------------------------


@pytest.mark.parametrize("kind", ["drop_connection", "http_error"])
async def test_a_refund_answer_lost_after_commit_is_found_by_refund_status(bkash: Bkash, kind: str):
    pid, trx = await sale(bkash, "100.00")
    await bkash.admin.lose_refund_answer(pid, kind)  # type: ignore[arg-type]
    if kind == "drop_connection":
        with pytest.raises(httpx.RemoteProtocolError):
            await refund(bkash, pid, trx, "25.00")
    else:
        lost = await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx, "amount": "25.00",
                                                   "sku": "s", "reason": "r"})
        assert lost.status_code == 503 and lost.headers["content-type"].startswith("text/html")
    status = await status_v1(bkash, pid, trx)  # the refund fault does not touch refund status
    assert (status["statusCode"], status["amount"]) == ("0000", "25.00")
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == [("25.00", 2500)]
    assert await bkash.admin.faults() == []
    calls = await bkash.admin.calls(payment_id=pid)
    assert (calls["refund"], calls["refund_status"]) == (1, 1)


async def test_a_refund_that_fails_before_commit_moves_no_money(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    await bkash.admin.add_fault("refund", "http_error", status=502, match={"paymentID": pid})
    assert (await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx, "amount": "5",
                                                "sku": "s", "reason": "r"})).status_code == 502
    await bkash.admin.add_fault("refund", "drop_connection", match={"paymentID": pid})
    with pytest.raises(httpx.RemoteProtocolError):
        await refund(bkash, pid, trx, "5")
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == []
    assert (await status_v1(bkash, pid, trx))["statusCode"] == "2002"


async def test_a_slow_refund_is_applied_and_answered_late(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    await bkash.admin.lose_refund_answer(pid, "delay_after_commit", delay_seconds=0.3)
    # In process there is no socket timeout: the client gives up the way a timeout would.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(refund(bkash, pid, trx, "5"), timeout=0.05)
    assert refund_lines(await bkash.admin.ledger(payment_id=pid)) == [("5.00", 500)]
    started = time.monotonic()
    assert (await status_v1(bkash, pid, trx))["amount"] == "5"  # status is not slowed
    assert time.monotonic() - started < 0.3


async def test_v2_refund_faults_and_v2_status_faults_are_the_same_operations(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    await bkash.admin.lose_refund_answer(pid)
    with pytest.raises(httpx.RemoteProtocolError):
        await v2(bkash, V2_REFUND, v2_refund_body(pid, trx, "10.00"))
    await bkash.admin.add_fault("refund_status", "error_code", code="2003", match={"paymentID": pid})
    refused = await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx})
    assert (refused.status_code, refused.json()) == (400, v2_error("2003", "Process failed"))
    listed = (await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx})).json()
    assert [r["refundAmount"] for r in listed["refundTransactions"]] == ["10.00"]
    calls = await bkash.admin.calls(payment_id=pid)
    assert (calls["refund"], calls["refund_status"]) == (1, 2)


async def test_refund_status_faults_leave_refunds_alone(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    await bkash.admin.add_fault("refund_status", "http_error", times=2, match={"paymentID": pid})
    assert (await refund(bkash, pid, trx, "10.00"))["statusCode"] == "0000"
    assert (await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx})).status_code == 503
    assert (await v2(bkash, V2_STATUS, {"paymentId": pid, "trxId": trx})).status_code == 503
    assert (await status_v1(bkash, pid, trx))["statusCode"] == "0000"
    await bkash.admin.add_fault("refund_status", "expire_token", match={"paymentID": pid})
    expired = await bkash.call("payment/refund", {"paymentID": pid, "trxID": trx})
    assert (expired.status_code, expired.json()) == (401, {"message": "The incoming token has expired"})
    await bkash.admin.add_fault("refund", "error_code", code="2079", match={"paymentID": pid})
    assert (await refund(bkash, pid, trx, "10.00")) == {"statusCode": "2079",
                                                        "statusMessage": "Invalid app Token"}


async def test_invalid_refund_faults_are_refused(bkash: Bkash):
    for operation, kind in (("refund_status", "no_redirect"), ("refund", "repeat_redirect"),
                            ("refund_status", "error_code")):
        with pytest.raises(BkashSandboxAdminError, match="422"):
            await bkash.admin.add_fault(operation, kind)


# --- admin views ------------------------------------------------------------------------------------


async def test_admin_lists_refunds_by_payment_and_invoice(bkash: Bkash):
    pid, trx = await sale(bkash, "100.00")
    other, other_trx = await sale(bkash, "100.00")
    made = await refund(bkash, pid, trx, "12.50", sku="room-1", reason="noise")
    await refund(bkash, other, other_trx, "1")
    invoice = (await bkash.admin.payment(pid))["merchant_invoice"]
    listed = await bkash.admin.refunds(invoice=invoice)
    assert listed == [{"payment_id": pid, "merchant_invoice": invoice, "original_trx_id": trx,
                       "refund_trx_id": made["refundTrxID"], "amount": "12.50", "amount_poisha": 1250,
                       "amount_as_sent": "12.50", "sku": "room-1", "reason": "noise", "api": "v1",
                       "at": listed[0]["at"], "completed_time": made["completedTime"], "repeats": 0}]
    assert len(await bkash.admin.refunds()) == 2
    assert (await bkash.admin.payment(pid))["refunds"] == listed
    await bkash.admin.reset()
    assert await bkash.admin.refunds() == []


# --- the project's client against it ----------------------------------------------------------------


@pytest.fixture(params=["v1", "v2"])
async def client(request):
    """BkashClient with v1 or v2 refunds, talking to a fresh sandbox in process."""
    app = create_app(BkashSandboxConfig())
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sandbox")
    creds = BkashCredentials(base_url="http://sandbox/v1.2.0-beta", app_key=CONFIG.app_key,
                             app_secret=CONFIG.app_secret, username=CONFIG.username,
                             password=CONFIG.password)
    client = BkashClient(http, creds, BkashPaths(refund_api=request.param))
    client.http = http  # type: ignore[attr-defined]
    client.sandbox = app.state.sandbox  # type: ignore[attr-defined]
    yield client
    await http.aclose()


async def captured(client: BkashClient, amount_poisha: int = 100000) -> tuple[str, str]:
    created = await client.create_payment(amount_poisha=amount_poisha, invoice_number="INV-refund",
                                          payer_reference="p", callback_url="http://shop/cb")
    await BkashCustomer(client.http).approve(created.bkash_url)  # type: ignore[attr-defined]
    await client.execute_payment(created.payment_id)
    captured_ = await client.capture_payment(created.payment_id)
    assert captured_.trx_id
    return created.payment_id, captured_.trx_id


async def test_the_clients_refunds_status_and_refusals_in_both_versions(client: BkashClient):
    pid, trx = await captured(client)
    assert (await client.refund_status(payment_id=pid, trx_id=trx)).refunds == []
    first = await client.refund_payment(payment_id=pid, trx_id=trx, amount_poisha=30000, sku="room",
                                        reason="late")
    second = await client.refund_payment(payment_id=pid, trx_id=trx, amount_poisha=20000, sku="room",
                                         reason="late")
    assert first.completed and (first.amount_poisha, second.amount_poisha) == (30000, 20000)
    assert first.original_trx_id == trx
    status = await client.refund_status(payment_id=pid, trx_id=trx)
    ids = [r.refund_trx_id for r in status.refunds]
    # v1 reports the latest refund, v2 every refund.
    assert ids == ([second.refund_trx_id] if client._paths.refund_api == "v1"
                   else [first.refund_trx_id, second.refund_trx_id])
    with pytest.raises(BkashRefundOverLimit) as over:
        await client.refund_payment(payment_id=pid, trx_id=trx, amount_poisha=50001, sku="room",
                                    reason="late")
    assert over.value.code == "2072"
    with pytest.raises(BkashRefundMerchantConfig) as bad_sku:
        await client.refund_payment(payment_id=pid, trx_id=trx, amount_poisha=100, sku="x" * 256,
                                    reason="late")
    assert bad_sku.value.code == "2075"


async def test_the_client_sees_the_window_and_the_state(client: BkashClient):
    pid, trx = await captured(client)
    client.sandbox.refund_desk.age(client.sandbox.find(pid), 16 * DAY)  # type: ignore[attr-defined]
    with pytest.raises(BkashRefundWindowPassed):
        await client.refund_payment(payment_id=pid, trx_id=trx, amount_poisha=100, sku="s", reason="r")
    created = await client.create_payment(amount_poisha=5000, invoice_number="INV-auth",
                                          payer_reference="p", callback_url="http://shop/cb")
    await BkashCustomer(client.http).approve(created.bkash_url)  # type: ignore[attr-defined]
    authorized = await client.execute_payment(created.payment_id)
    with pytest.raises(BkashRefundNotRefundable) as not_yet:
        await client.refund_payment(payment_id=created.payment_id, trx_id=authorized.trx_id or "",
                                    amount_poisha=100, sku="s", reason="r")
    assert not_yet.value.code == "2127"


async def test_the_client_resolves_a_lost_refund_answer_with_refund_status(client: BkashClient):
    pid, trx = await captured(client)
    sandbox = client.sandbox  # type: ignore[attr-defined]
    from sandbox.bkash.faults import FaultSpec
    sandbox.faults.add(FaultSpec(operation="refund", kind="drop_connection", commit=True,
                                 match={"paymentID": pid}))
    with pytest.raises(BkashNoResponse):
        await client.refund_payment(payment_id=pid, trx_id=trx, amount_poisha=25000, sku="s", reason="r")
    status = await client.refund_status(payment_id=pid, trx_id=trx)
    assert [r.amount_poisha for r in status.refunds] == [25000]
    assert [(e["kind"], e["amount_poisha"]) for e in sandbox.ledger_view(payment_id=pid)] == [
        ("AUTHORIZE", 100000), ("CAPTURE", 100000), ("REFUND", 25000)]
