"""Monetix refunds on the client side: the Gate client's refund request (validation before sending,
the signed §3.6 body, 3230 / 3283 and the usual classes), reading refunds back from status answers
(recorded-style bodies), and the refund activities run with temporalio's ActivityEnvironment against
the in-process sandbox, asserted on its ledger."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.monetix import MonetixActivities
from contracts.monetix import MonetixErrorKind
from contracts.refunds import (
    MonetixRefundCall,
    MonetixRefundStatusCall,
    RefundActivity,
    RefundErrorKind,
    RefundStage,
)
from providers.monetix import (
    MonetixBadSignature,
    MonetixDuplicateRefund,
    MonetixError,
    MonetixGateClient,
    MonetixGateConfig,
    MonetixInvalidRequest,
    MonetixRefundOverLimit,
    MonetixRefunds,
    MonetixRequestRejected,
    MonetixResultUnknown,
)
from providers.monetix_signing import sign, verify
from tests.unit.test_monetix_client import Recorder, assert_clean
from tests.unit.test_monetix_sandbox import (  # noqa: F401 - fixtures
    CALLBACK_URL,
    KEY,
    Monetix,
    finish,
    make_monetix,
    monetix,
)

SECRET = "s3cr3t-monetix-key"
PROJECT = 1234
CALLBACK = "https://merchant.example/monetix/callback"
SALE_REQUEST_ID = "5c87ac4d81b7-e70a72cd-05001856"
REFUND_REQUEST_ID = "9a1f0c3e77d2-b40c11aa-05001901"


def client(recorder: Recorder, **config: Any) -> MonetixGateClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return MonetixGateClient(http, MonetixGateConfig(project_id=PROJECT, secret_key=SecretStr(SECRET),
                                                     base_url="https://gate.test", **config))


def rejection(code: str, message: str, *, in_errors_only: bool = False, http: int = 400,
              field: str = "payment.amount") -> Recorder:
    def reply(req: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {"status": "error", "message": message, "project_id": PROJECT,
                                "payment_id": json.loads(req.content)["general"]["payment_id"],
                                "errors": [{"code": code, "field": field, "message": message}]}
        if not in_errors_only:
            body["code"] = code
        return httpx.Response(http, json=body)
    return Recorder(reply)


async def send_refund(gate: MonetixGateClient, **kw: Any):
    args: dict[str, Any] = {"payment_id": "bk_0001", "amount_poisha": 30000, "currency": "BDT",
                            "description": "one item returned", "merchant_refund_id": "R-1",
                            "callback_url": CALLBACK} | kw
    return await gate.refund(**args)


def operation(op_id: int, type_: str, status: str, amount: int, request_id: str, code: str = "0",
              message: str = "Success") -> dict[str, Any]:
    return {"id": op_id, "type": type_, "status": status, "date": "2025-11-21T04:50:00+0000",
            "created_date": "2025-11-21T04:49:58+0000", "request_id": request_id,
            "sum_initial": {"amount": amount, "currency": "BDT"},
            "sum_converted": {"amount": amount, "currency": "BDT"}, "code": code, "message": message,
            "provider": {"id": 1701, "payment_id": "RF7K2M9Q1X" if status == "success" else "", "auth_code": ""}}


def status_answer(*refund_ops: dict[str, Any], payment_status: str = "partially refunded", balance: int = 70000,
                  merchant_refund_id: str | None = "R-1", secret: str = SECRET) -> dict[str, Any]:
    """A status answer as §3.4 describes it (a signed callback with ``operations[]``)."""
    payment: dict[str, Any] = {"id": "bk_0001", "type": "purchase", "status": payment_status,
                               "date": "2025-11-21T04:50:00+0000", "method": "Bkash",
                               "sum": {"amount": balance, "currency": "BDT"}, "description": "Deposit"}
    if merchant_refund_id is not None:
        payment["merchant_refund_id"] = merchant_refund_id
    data = {"project_id": PROJECT, "payment": payment, "account": {"number": "01712345678"},
            "customer": {"id": "customer_123"},
            "operations": [operation(5028800000000001, "sale", "success", 100000, SALE_REQUEST_ID), *refund_ops]}
    data["signature"] = sign(data, secret)
    return data


def answering(data: dict[str, Any]) -> Recorder:
    return Recorder(lambda req: httpx.Response(200, json=data))


# --- the refund request ---------------------------------------------------------------------------


async def test_refund_body_is_the_documented_shape_signed_like_every_request():
    recorder = Recorder()
    ack = await send_refund(client(recorder))
    assert ack.request_id == SALE_REQUEST_ID and ack.payment_id == "bk_0001"
    [request] = recorder.requests
    assert request.url == "https://gate.test/v2/payment/wallet/bkash/refund"
    body = recorder.body()
    assert verify(body, SECRET)
    body["general"].pop("signature")
    assert body == {"general": {"project_id": PROJECT, "payment_id": "bk_0001", "merchant_callback_url": CALLBACK},
                    "payment": {"amount": 30000, "currency": "BDT", "description": "one item returned",
                                "merchant_refund_id": "R-1"}}


async def test_refund_without_a_callback_url_leaves_the_projects_own_and_the_path_is_configurable():
    recorder = Recorder()
    await send_refund(client(recorder, refund_path="/v2/payment/bkash/refund"), callback_url=None)
    assert recorder.requests[0].url.path == "/v2/payment/bkash/refund"
    assert "merchant_callback_url" not in recorder.body()["general"]


async def test_refund_amount_is_any_positive_poisha_amount_not_only_multiples_of_10_bdt():
    recorder = Recorder()
    await send_refund(client(recorder), amount_poisha=90050)  # a customer who paid 900.50 BDT
    assert recorder.body()["payment"]["amount"] == 90050


@pytest.mark.parametrize(("override", "expected"), [
    ({"amount_poisha": 0}, "payment.amount 0 (0.00 BDT) must be positive"),
    ({"amount_poisha": -1000}, "payment.amount -1000 (-10.00 BDT) must be positive"),
    ({"amount_poisha": 300.5}, "payment.amount must be an integer number of poisha"),
    ({"amount_poisha": True}, "payment.amount must be an integer number of poisha"),
    ({"amount_poisha": "30000"}, "payment.amount must be an integer number of poisha"),
    ({"currency": "USD"}, "payment.currency 'USD' is not supported"),
    ({"description": "  "}, "payment.description must be the refund's reason"),
    ({"description": "x" * 256}, "payment.description is 256 characters; at most 255"),
    ({"description": "bad\x00text"}, "payment.description 'bad\\x00text' contains control characters"),
    ({"merchant_refund_id": ""}, "payment.merchant_refund_id must be your refund's unique id"),
    ({"merchant_refund_id": "R<1>"}, "payment.merchant_refund_id 'R<1>' must be at most 255 printable"),
    ({"payment_id": ""}, "general.payment_id must be a non-empty string"),
    ({"callback_url": "ftp://merchant.example/cb"}, "general.merchant_callback_url 'ftp://"),
])
async def test_invalid_refund_is_refused_before_anything_is_sent(override: dict[str, Any], expected: str):
    recorder = Recorder()
    with pytest.raises(MonetixInvalidRequest) as err:
        await send_refund(client(recorder), **override)
    assert recorder.requests == []
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems
    assert str(err.value).startswith("Monetix request")


async def test_every_broken_rule_is_named_at_once():
    with pytest.raises(MonetixInvalidRequest) as err:
        await send_refund(client(Recorder()), amount_poisha=0, description="", merchant_refund_id="")
    assert len(err.value.problems) == 3


@pytest.mark.parametrize("in_errors_only", [False, True])
async def test_3230_is_a_duplicate_refund_to_resolve_by_status_not_a_failure(in_errors_only: bool):
    recorder = rejection("3230", "Duplicate merchant_refund_id", in_errors_only=in_errors_only,
                         field="payment.merchant_refund_id")
    with pytest.raises(MonetixDuplicateRefund) as dup:
        await send_refund(client(recorder))
    assert isinstance(dup.value, MonetixRequestRejected) and dup.value.code == "3230"
    assert "find it with the status request, do not send it again" in str(dup.value)
    assert dup.value.payment_id == "bk_0001"


async def test_3283_is_over_the_remaining_amount():
    with pytest.raises(MonetixRefundOverLimit) as over:
        await send_refund(client(rejection("3283", "Refund amount is greater than the initial payment amount")))
    assert over.value.code == "3283" and over.value.kind == RefundErrorKind.OVER_LIMIT
    assert "refund at most the rest" in str(over.value)


async def test_200_with_status_error_3230_is_a_duplicate_too():
    with pytest.raises(MonetixDuplicateRefund):
        await send_refund(client(rejection("3230", "Duplicate merchant_refund_id", http=200)))


@pytest.mark.parametrize(("code", "hint"), [
    ("3060", "only a successful (paid) purchase can be refunded"),
    ("3061", "Monetix has no purchase with this payment_id"),
    ("3261", "check the secret key configured for this project_id"),
    ("3041", ""),  # a sale's duplicate payment_id means nothing special for a refund
])
async def test_other_rejections_keep_the_platform_words_and_say_what_to_do(code: str, hint: str):
    with pytest.raises(MonetixRequestRejected) as err:
        await send_refund(client(rejection(code, "Platform says no")))
    assert type(err.value) is MonetixRequestRejected and err.value.code == code
    assert f"Monetix rejected the refund for payment bk_0001 (HTTP 400, code {code}): Platform says no" in str(err.value)
    assert hint in str(err.value)


def _timeout(req: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=req)


def _dropped(req: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("peer closed connection", request=req)


@pytest.mark.parametrize(("reply", "reason"), [
    (lambda req: httpx.Response(503, text="<html>busy</html>"), "HTTP 503"),
    (_timeout, "no answer within 30 s"),
    (_dropped, "connection failed: RemoteProtocolError"),
    (lambda req: httpx.Response(200, text="garbage"), "not a JSON object"),
    (lambda req: httpx.Response(200, json={"status": "processing"}), "instead of 'success'"),
])
async def test_no_clear_answer_to_a_refund_is_result_unknown(reply, reason: str):
    with pytest.raises(MonetixResultUnknown) as err:
        await send_refund(client(Recorder(reply)))
    assert reason in str(err.value) and "Monetix refund for payment bk_0001: result unknown" in str(err.value)


async def test_a_platform_echo_of_the_key_or_signature_is_scrubbed_from_refund_errors():
    def reply(req: httpx.Request) -> httpx.Response:
        signature = json.loads(req.content)["general"]["signature"]
        return httpx.Response(400, json={"status": "error", "code": "3230",
                                         "message": f"dup {SECRET} {signature}",
                                         "errors": [{"code": "3230", "message": f"sig {signature}"}]})
    recorder = Recorder(reply)
    with pytest.raises(MonetixDuplicateRefund) as err:
        await send_refund(client(recorder))
    assert_clean(err.value, recorder.body()["general"]["signature"])


def test_refund_errors_are_monetix_errors_with_stable_kinds():
    assert issubclass(MonetixDuplicateRefund, MonetixRequestRejected)
    assert issubclass(MonetixRefundOverLimit, MonetixRequestRejected) and issubclass(MonetixRefundOverLimit, MonetixError)
    assert MonetixRefundOverLimit.kind == RefundErrorKind.OVER_LIMIT
    assert MonetixDuplicateRefund.kind not in {MonetixRequestRejected.kind, MonetixErrorKind.DUPLICATE_PAYMENT}


# --- reading refunds back ------------------------------------------------------------------------


async def test_refund_status_reads_the_refund_operations_of_a_signed_status_answer():
    done = operation(5028800000000002, "refund", "success", 30000, REFUND_REQUEST_ID)
    recorder = answering(status_answer(done))
    refunds = await client(recorder).refund_status("bk_0001")
    assert recorder.requests[0].url.path == "/v2/payment/status"
    assert refunds.snapshot.signature_verified and refunds.payment_status == "partially refunded"
    assert (refunds.balance_poisha, refunds.merchant_refund_id) == (70000, "R-1")
    [op] = refunds.refunds
    assert (op.id, op.status, op.request_id, op.amount_poisha, op.code) == \
        ("5028800000000002", "success", REFUND_REQUEST_ID, 30000, "0")
    assert op.succeeded and op.final and not op.failed and op.provider_refund_id == "RF7K2M9Q1X"


async def test_refund_status_with_a_bad_signature_is_not_trusted():
    done = operation(5028800000000002, "refund", "success", 30000, REFUND_REQUEST_ID)
    with pytest.raises(MonetixBadSignature):
        await client(answering(status_answer(done, secret="another-key"))).refund_status("bk_0001")


def test_a_refund_callback_is_read_the_same_way():
    callback = status_answer()
    callback.pop("signature")
    callback.pop("operations")
    callback["operation"] = operation(5028800000000002, "refund", "decline", 30000, REFUND_REQUEST_ID,
                                      code="20000", message="General decline")
    refunds = MonetixRefunds.from_body(callback)
    [op] = refunds.refunds
    assert op.failed and op.final and (op.code, op.message) == ("20000", "General decline")


def _refunds(*ops: dict[str, Any], merchant_refund_id: str | None = None) -> MonetixRefunds:
    return MonetixRefunds.from_body(status_answer(*ops, merchant_refund_id=merchant_refund_id))


def test_find_takes_the_request_id_first():
    a = operation(2, "refund", "success", 30000, "req-a")
    b = operation(3, "refund", "processing", 30000, "req-b", code="9999")
    refunds = _refunds(a, b, merchant_refund_id="R-b")
    assert refunds.find(request_id="req-a", merchant_refund_id="R-b").id == "2"


def test_find_by_our_merchant_refund_id_is_the_newest_refund():
    a = operation(2, "refund", "success", 30000, "req-a")
    b = operation(3, "refund", "processing", 30000, "req-b")
    assert _refunds(a, b, merchant_refund_id="R-b").find(merchant_refund_id="R-b").id == "3"
    # Another refund's id: the newest operation is not ours, and nothing else tells.
    assert _refunds(a, b, merchant_refund_id="R-b").find(merchant_refund_id="R-c", amount_poisha=30000) is None


def test_find_by_amount_needs_the_operations_the_caller_already_knows():
    a = operation(2, "refund", "success", 30000, "req-a")
    b = operation(3, "refund", "success", 30000, "req-b")
    refunds = _refunds(a, b)
    assert refunds.find(amount_poisha=30000) is None  # no known ids: two refunds of 300 BDT look alike
    assert refunds.find(amount_poisha=30000, known_operation_ids=["2"]).id == "3"
    assert refunds.find(amount_poisha=30000, known_operation_ids=["2", "3"]) is None
    assert refunds.find(amount_poisha=20000, known_operation_ids=[]) is None
    # Sale operations are never refunds.
    assert _refunds().find(amount_poisha=100000, known_operation_ids=[]) is None


@pytest.mark.parametrize(("status", "succeeded", "failed"), [
    ("success", True, False), ("decline", False, True), ("internal error", False, True),
    ("processing", False, False), ("external processing", False, False), ("unknown", False, False)])
def test_a_refund_operation_is_final_when_it_succeeded_or_failed(status: str, succeeded: bool, failed: bool):
    [op] = _refunds(operation(2, "refund", status, 30000, "req")).refunds
    assert (op.succeeded, op.failed, op.final) == (succeeded, failed, succeeded or failed)


# --- the refund activities, against the sandbox ----------------------------------------------------


async def paid(m: Monetix, amount: int = 100000) -> str:
    payment_id = await m.instructed(amount=amount)
    assert (await finish(m, payment_id))["payment"]["status"] == "success"
    return payment_id


def environment(attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


def call(payment_id: str, amount: int = 30000, refund_id: str = "R-1") -> MonetixRefundCall:
    return MonetixRefundCall(payment_id=payment_id, amount_poisha=amount, description="one item returned",
                             refund_id=refund_id, callback_url=CALLBACK_URL)


async def refund_lines(m: Monetix, payment_id: str) -> list[int]:
    return [e["amount"] for e in await m.admin.ledger(payment_id) if e["kind"] == "REFUND"]


async def raises(coro) -> ApplicationError:
    with pytest.raises(ApplicationError) as err:
        await coro
    assert KEY not in str(err.value) and SECRET not in str(err.value)
    return err.value


def test_refund_activities_carry_the_contract_names():
    assert MonetixActivities.monetix_refund.__temporal_activity_definition.name == RefundActivity.MONETIX_REFUND
    assert MonetixActivities.monetix_refund_status.__temporal_activity_definition.name == \
        RefundActivity.MONETIX_REFUND_STATUS


async def test_refund_is_sent_once_and_answered_refunding_with_its_request_id(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    result = await environment().run(acts.monetix_refund, call(payment_id))
    assert result.status is RefundStage.REFUNDING and result.request_id and not result.reconciled
    [r] = await monetix.admin.refunds(payment_id)
    assert (r["request_id"], r["merchant_refund_id"], r["amount"]) == (result.request_id, "R-1", 30000)
    assert "result comes by callback" in result.detail and await refund_lines(monetix, payment_id) == [30000]


@pytest.mark.parametrize("kind", ["drop_connection", "http_error"])
async def test_lost_refund_answer_is_resolved_by_status_to_exactly_one_refund(monetix: Monetix, kind: str):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    await monetix.admin.add_fault("refund", kind, commit=True, match={"payment_id": payment_id})
    lost = await raises(environment(1).run(acts.monetix_refund, call(payment_id)))
    assert lost.type == RefundErrorKind.RESULT_UNKNOWN and not lost.non_retryable
    result = await environment(2).run(acts.monetix_refund, call(payment_id))
    assert result.reconciled and result.status is RefundStage.SUCCEEDED and result.amount_poisha == 30000
    [r] = await monetix.admin.refunds(payment_id)
    assert (result.provider_refund_id, result.request_id) == (str(r["operation_id"]), r["request_id"])
    assert (await monetix.admin.stats())["refund_requests"] == 1  # the retry asked, it did not re-send
    assert await refund_lines(monetix, payment_id) == [30000]


async def test_retry_after_a_refund_that_never_registered_sends_it_once(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    await monetix.admin.add_fault("refund", "http_error", status=503, match={"payment_id": payment_id})
    await raises(environment(1).run(acts.monetix_refund, call(payment_id)))
    result = await environment(2).run(acts.monetix_refund, call(payment_id))
    assert result.status is RefundStage.REFUNDING and not result.reconciled
    assert await refund_lines(monetix, payment_id) == [30000]


async def test_3230_is_resolved_by_status_and_never_sent_again(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    first = await environment().run(acts.monetix_refund, call(payment_id))
    # The same refund scheduled afresh (attempt 1 again, e.g. a new activity after a reset).
    again = await environment().run(acts.monetix_refund, call(payment_id))
    assert again.reconciled and again.status is RefundStage.SUCCEEDED and again.request_id == first.request_id
    assert "3230" in again.detail
    stats = await monetix.admin.stats()
    assert stats["refund_requests"] == 2 and stats["rejections"] == {"3230": 1}
    assert await refund_lines(monetix, payment_id) == [30000]


async def test_3230_for_an_id_another_payment_used_is_a_merchant_configuration_error(monetix: Monetix):
    first, second = await paid(monetix), await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    await environment().run(acts.monetix_refund, call(first))
    refused = await raises(environment().run(acts.monetix_refund, call(second)))
    assert refused.type == RefundErrorKind.MERCHANT_CONFIG and refused.non_retryable
    assert "unique within the Monetix project" in str(refused) and await refund_lines(monetix, second) == []


async def test_3283_is_refused_without_retries(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    refused = await raises(environment().run(acts.monetix_refund, call(payment_id, amount=100010)))
    assert refused.type == RefundErrorKind.OVER_LIMIT and refused.non_retryable
    assert "100000 poisha left to refund" in str(refused) and await refund_lines(monetix, payment_id) == []


async def test_an_unpaid_or_unknown_payment_is_not_refundable(monetix: Monetix):
    acts = MonetixActivities(monetix.gate)
    waiting = await monetix.instructed()
    refused = await raises(environment().run(acts.monetix_refund, call(waiting)))
    assert refused.type == RefundErrorKind.NOT_REFUNDABLE and refused.non_retryable
    unknown = await raises(environment().run(acts.monetix_refund, call("bk_never_sold")))
    assert unknown.type == RefundErrorKind.NOT_REFUNDABLE
    # On a retry the status request says so first: a signed 3061.
    retried = await raises(environment(2).run(acts.monetix_refund, call("bk_never_sold")))
    assert retried.type == RefundErrorKind.NOT_REFUNDABLE and retried.non_retryable


async def test_invalid_refund_is_a_merchant_configuration_error_and_nothing_is_sent(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    bad = call(payment_id).model_copy(update={"currency": "USD"})
    refused = await raises(environment().run(acts.monetix_refund, bad))
    assert refused.type == RefundErrorKind.MERCHANT_CONFIG and refused.non_retryable
    assert (await monetix.admin.stats())["refund_requests"] == 0


async def test_status_is_polled_until_the_refund_is_final(make_monetix):
    m = make_monetix(refund_processing_seconds=60)
    payment_id = await paid(m)
    acts = MonetixActivities(m.gate)
    sent = await environment().run(acts.monetix_refund, call(payment_id))
    poll = MonetixRefundStatusCall(payment_id=payment_id, refund_id="R-1", amount_poisha=30000,
                                   request_id=sent.request_id)
    for attempt in (1, 2):
        still = await raises(environment(attempt).run(acts.monetix_refund_status, poll))
        assert still.type == MonetixErrorKind.STILL_PROCESSING and not still.non_retryable
        assert still.category is ApplicationErrorCategory.BENIGN and "still 'processing'" in str(still)
    m.clock.advance(60)
    done = await environment(3).run(acts.monetix_refund_status, poll)
    assert done.status is RefundStage.SUCCEEDED and done.amount_poisha == 30000 and done.provider_refund_id
    assert done.request_id == sent.request_id and await refund_lines(m, payment_id) == [30000]


async def test_a_declined_refund_is_failed_with_the_providers_code(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    await monetix.admin.decline_next_refund(payment_id)
    sent = await environment().run(acts.monetix_refund, call(payment_id))
    poll = MonetixRefundStatusCall(payment_id=payment_id, refund_id="R-1", amount_poisha=30000)
    declined = await environment().run(acts.monetix_refund_status, poll)  # found by refund id, no request id
    assert declined.status is RefundStage.FAILED and declined.request_id == sent.request_id
    assert "code 20000: General decline" in declined.detail and await refund_lines(monetix, payment_id) == []


class _StatusCallNotFoundIsFinal(MonetixRefundStatusCall):
    # The field monetix_refund_status reads when contracts.refunds carries it.
    not_found_is_final: bool = True


async def test_a_refund_missing_from_the_status_answer_is_polled_unless_the_caller_says_it_never_registered(
        monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    args = {"payment_id": payment_id, "refund_id": "R-never", "amount_poisha": 30000}
    missing = await raises(environment().run(acts.monetix_refund_status, MonetixRefundStatusCall(**args)))
    assert missing.type == MonetixErrorKind.STILL_PROCESSING and not missing.non_retryable
    final = await environment().run(acts.monetix_refund_status, _StatusCallNotFoundIsFinal(**args))
    assert final.status is RefundStage.FAILED and "not registered at Monetix" in final.detail


async def test_a_status_request_that_fails_is_result_unknown_and_sends_nothing(monetix: Monetix):
    payment_id = await paid(monetix)
    acts = MonetixActivities(monetix.gate)
    await monetix.admin.add_fault("status", "http_error", status=500, match={"payment_id": payment_id})
    unknown = await raises(environment(2).run(acts.monetix_refund, call(payment_id)))
    assert unknown.type == RefundErrorKind.RESULT_UNKNOWN and not unknown.non_retryable
    assert "sends nothing blindly" in str(unknown)
    assert (await monetix.admin.stats())["refund_requests"] == 0
