"""Monetix Gate client and Payment Page links: validation before sending, signed wire shapes, and how
every kind of answer (ack, rejection, silence, snapshot) is classified. Requests go to an
``httpx.MockTransport`` that records them, so "nothing was sent" is asserted, not assumed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from contracts.money import format_bdt
from providers.monetix import (
    MonetixAck,
    MonetixBadSignature,
    MonetixClarification,
    MonetixCustomer,
    MonetixDuplicatePayment,
    MonetixError,
    MonetixGateClient,
    MonetixGateConfig,
    MonetixInvalidRequest,
    MonetixPaymentNotFound,
    MonetixPaymentPageConfig,
    MonetixRequestRejected,
    MonetixResultUnknown,
    MonetixSaleRequest,
    MonetixStatus,
    PaymentPageParams,
    build_payment_page_url,
    epay_widget_params,
)
from providers.monetix_signing import loads, sign, verify

SECRET = "s3cr3t-monetix-key"
PROJECT = 1234
CALLBACK = "https://merchant.example/monetix/callback"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records every request and answers with a scripted reply."""

    def __init__(self, reply: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = reply or (lambda req: httpx.Response(200, json=ack_body(req)))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    def body(self, i: int = -1) -> dict[str, Any]:
        return loads(self.requests[i].content)


def ack_body(req: httpx.Request) -> dict[str, Any]:
    sent = json.loads(req.content)
    return {
        "status": "success",
        "request_id": "5c87ac4d81b7-e70a72cd-05001856",
        "project_id": PROJECT,
        "payment_id": sent["general"]["payment_id"],
    }


def make_client(recorder: Recorder, **config: Any) -> MonetixGateClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    cfg = MonetixGateConfig(project_id=PROJECT, secret_key=SecretStr(SECRET), base_url="https://gate.test", **config)
    return MonetixGateClient(http, cfg)


def customer(**kw: Any) -> dict[str, Any]:
    return {
        "id": "customer_123",
        "ip_address": "198.51.100.47",
        "first_name": "Rahim",
        "last_name": "Uddin",
        "email": "rahim@example.com",
    } | kw


def sale(**kw: Any) -> MonetixSaleRequest:
    fields: dict[str, Any] = {"payment_id": "bk_0001", "amount": 100000, "customer": customer()}
    return MonetixSaleRequest(**(fields | kw))


def assert_clean(exc: BaseException, *also_secret: str) -> None:
    for text in (str(exc), repr(exc)):
        assert SECRET not in text
        for s in also_secret:
            assert s not in text


# -------------------------------------------------------------------------------------- money text


@pytest.mark.parametrize(
    ("minor", "text"), [(9550, "95.50"), (5, "0.05"), (0, "0.00"), (100000, "1000.00"), (-150, "-1.50")]
)
def test_amounts_in_messages_use_integer_arithmetic(minor: int, text: str) -> None:
    assert format_bdt(minor) == text


# ------------------------------------------------------------------------------ request validation


def test_amount_not_a_multiple_of_10_bdt_names_the_rule_and_the_neighbours() -> None:
    with pytest.raises(ValidationError) as err:
        sale(amount=9550)
    problem = MonetixInvalidRequest.from_validation_error(err.value, payment_id="bk_0001").problems
    assert problem == [
        "payment.amount 9550 (95.50 BDT) is not a multiple of 10 BDT (Monetix bKash rule); "
        "send 9000 (90.00 BDT) or 10000 (100.00 BDT)"
    ]


def test_amount_below_10_bdt_suggests_only_the_smallest_valid_amount() -> None:
    with pytest.raises(ValidationError) as err:
        sale(amount=500)
    assert MonetixInvalidRequest.from_validation_error(err.value).problems[0].endswith("; send 1000 (10.00 BDT)")


@pytest.mark.parametrize("bad", [95.5, 100000.0, True, "100000", None])
def test_amount_must_be_an_int_of_poisha(bad: Any) -> None:
    with pytest.raises(ValidationError, match="payment.amount must be an integer number of poisha"):
        sale(amount=bad)


@pytest.mark.parametrize("bad", [0, -1000])
def test_amount_must_be_positive(bad: int) -> None:
    with pytest.raises(ValidationError, match="payment.amount .* must be positive"):
        sale(amount=bad)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"currency": "USD"}, "payment.currency 'USD' is not supported: Monetix bKash takes BDT only"),
        ({"currency": "bdt"}, "payment.currency 'bdt' is not supported"),
        (
            {"account_number": "01712-345678"},
            "account.number '01712-345678' must be the customer's bKash account number, digits only, at most 12",
        ),
        ({"account_number": "0171234567890"}, "account.number '0171234567890' must be"),
        ({"account_number": ""}, "account.number '' must be"),
        ({"payment_id": ""}, "general.payment_id must be a non-empty string"),
        ({"payment_id": "x" * 256}, "general.payment_id is 256 characters; Monetix accepts at most 255"),
        ({"payment_id": "bk\n0001"}, "general.payment_id 'bk\\n0001' contains control characters"),
        ({"customer": customer(email="rahim@")}, "customer.email 'rahim@' is not a well-formed email address"),
        ({"customer": customer(email="a b@example.com")}, "customer.email"),
        (
            {"customer": customer(ip_address="111.222.333.444")},
            "customer.ip_address '111.222.333.444' is not an IPv4 or IPv6 address",
        ),
        ({"customer": customer(first_name=" ")}, "customer.first_name must be the customer's first name"),
        ({"customer": customer(id="")}, "customer.id must be the customer's unique ID"),
    ],
)
def test_each_rule_names_the_field_in_monetix_words(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        sale(**override)
    problems = MonetixInvalidRequest.from_validation_error(err.value).problems
    assert any(p.startswith(expected) or expected in p for p in problems), problems


def test_missing_fields_are_reported_by_their_wire_name() -> None:
    with pytest.raises(ValidationError) as err:
        MonetixSaleRequest(payment_id="bk_1", amount=1000)  # type: ignore[call-arg]
    assert MonetixInvalidRequest.from_validation_error(err.value).problems == ["customer is required"]


def test_valid_request_accepts_ipv6_and_a_12_digit_account() -> None:
    req = sale(customer=customer(ip_address="2001:db8::1"), account_number="017123456789")
    assert req.customer.ip_address == "2001:db8::1" and req.account_number == "017123456789"
    assert req.currency == "BDT"


async def test_invalid_sale_is_refused_before_anything_is_sent() -> None:
    rec = Recorder()
    client = make_client(rec)
    # model_construct skips validation; the client must validate again at the door.
    sneaky = MonetixSaleRequest.model_construct(
        payment_id="bk_0001", amount=9550, currency="BDT", customer=MonetixCustomer(**customer()),
        account_number=None, description=None,
    )  # fmt: skip
    with pytest.raises(MonetixInvalidRequest) as err:
        await client.sale(sneaky, CALLBACK)
    assert err.value.kind == "MonetixInvalidRequest" and err.value.payment_id == "bk_0001"
    assert "for payment bk_0001 not sent" in str(err.value)
    assert "payment.amount 9550 (95.50 BDT) is not a multiple of 10 BDT" in str(err.value)
    with pytest.raises(MonetixInvalidRequest, match="general.merchant_callback_url 'ftp://x' must be an absolute http"):
        await client.sale(sale(), "ftp://x")
    with pytest.raises(MonetixInvalidRequest, match="additional_data must name at least one field"):
        await client.clarification("bk_0001", {})
    with pytest.raises(MonetixInvalidRequest, match="additional_data.transaction_id must be a non-empty string"):
        await client.clarification("bk_0001", {"transaction_id": " "})
    with pytest.raises(MonetixInvalidRequest, match="general.payment_id must be a non-empty string"):
        await client.status("")
    assert rec.requests == []


def test_clarification_model_keeps_the_fields() -> None:
    c = MonetixClarification(payment_id="bk_0001", fields={"transaction_id": "9AB1CD2EF3"})
    assert c.fields == {"transaction_id": "9AB1CD2EF3"}


# ------------------------------------------------------------------------------ signed wire shapes


async def test_sale_body_is_the_documented_shape_and_verifies() -> None:
    rec = Recorder()
    ack = await make_client(rec).sale(sale(account_number="017123456789"), CALLBACK)
    req = rec.requests[0]
    assert req.method == "POST" and str(req.url) == "https://gate.test/v2/payment/wallet/bkash/sale"
    assert req.headers["content-type"] == "application/json"
    assert req.extensions["timeout"]["read"] == 30
    body = rec.body()
    sig = body["general"]["signature"]
    assert body == {
        "general": {
            "project_id": PROJECT,
            "payment_id": "bk_0001",
            "merchant_callback_url": CALLBACK,
            "signature": sig,
        },
        "customer": customer(),
        "account": {"number": "017123456789"},
        "payment": {"currency": "BDT", "amount": 100000},
    }
    assert verify(body, SECRET)
    assert not verify(body, "another-key")
    assert ack == MonetixAck(request_id="5c87ac4d81b7-e70a72cd-05001856", payment_id="bk_0001")


async def test_sale_without_account_number_omits_the_account_object() -> None:
    rec = Recorder()
    await make_client(rec, timeout_seconds=5).sale(sale(description="Deposit"), CALLBACK)
    body = rec.body()
    assert "account" not in body
    assert body["payment"] == {"currency": "BDT", "amount": 100000, "description": "Deposit"}
    assert rec.requests[0].extensions["timeout"]["connect"] == 5
    assert verify(body, SECRET)


async def test_clarification_sends_the_transaction_id_signed() -> None:
    rec = Recorder()
    ack = await make_client(rec).clarification("bk_0001", {"transaction_id": "9AB1CD2EF3"})
    assert str(rec.requests[0].url) == "https://gate.test/v2/payment/clarification"
    body = rec.body()
    assert body["additional_data"] == {"transaction_id": "9AB1CD2EF3"}
    assert set(body["general"]) == {"project_id", "payment_id", "signature"}
    assert verify(body, SECRET)
    assert ack.payment_id == "bk_0001"


async def test_status_request_is_signed_general_only() -> None:
    rec = Recorder(lambda req: httpx.Response(200, json=signed_snapshot()))
    await make_client(rec).status("bk_0001")
    body = rec.body()
    assert str(rec.requests[0].url) == "https://gate.test/v2/payment/status"
    assert list(body) == ["general"] and body["general"]["payment_id"] == "bk_0001"
    assert verify(body, SECRET)


# ------------------------------------------------------------------------------------- acks/errors


def reply(status: int, payload: Any = None, *, content: bytes | None = None) -> Handler:
    def handler(req: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=payload)

    return handler


def raises(exc_type: type[Exception]) -> Handler:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=req)  # type: ignore[call-arg]

    return handler


async def test_ack_without_request_id_is_still_an_ack() -> None:
    rec = Recorder(reply(200, {"status": "success", "payment_id": "bk_0001"}))
    assert await make_client(rec).sale(sale(), CALLBACK) == MonetixAck(request_id=None, payment_id="bk_0001")


async def test_4xx_is_rejected_with_the_platform_message() -> None:
    payload = {
        "status": "error",
        "request_id": "r1",
        "project_id": PROJECT,
        "payment_id": "bk_0001",
        "code": "2004",
        "message": "Required field not provided",
        "errors": [{"code": "2004", "field": "customer.email", "message": "Required field not provided"}],
    }
    rec = Recorder(reply(400, payload))
    with pytest.raises(MonetixRequestRejected) as err:
        await make_client(rec).sale(sale(), CALLBACK)
    e = err.value
    assert type(e) is MonetixRequestRejected and e.kind == "MonetixRequestRejected"
    assert (e.payment_id, e.http_status, e.code) == ("bk_0001", 400, "2004")
    assert e.platform_message == "Required field not provided"
    assert e.errors == [{"code": "2004", "field": "customer.email", "message": "Required field not provided"}]
    assert "rejected the sale for payment bk_0001 (HTTP 400, code 2004): Required field not provided" in str(e)
    assert "customer.email" in str(e)
    assert_clean(e, rec.body()["general"]["signature"])


async def test_200_with_status_error_is_a_rejection_too() -> None:
    rec = Recorder(reply(200, {"status": "error", "code": "3261", "message": "Invalid signature"}))
    with pytest.raises(MonetixRequestRejected, match="HTTP 200, code 3261\\): Invalid signature; check the secret key"):
        await make_client(rec).sale(sale(), CALLBACK)


async def test_duplicate_payment_id_is_not_a_decline() -> None:
    payload = {"status": "error", "code": "3041", "message": "Payment ID already exists"}
    rec = Recorder(reply(400, payload))
    with pytest.raises(MonetixDuplicatePayment) as err:
        await make_client(rec).sale(sale(), CALLBACK)
    assert isinstance(err.value, MonetixRequestRejected) and err.value.kind == "MonetixDuplicatePayment"
    assert "resolve with the status request" in str(err.value)


async def test_403_without_json_points_at_ip_allow_listing() -> None:
    rec = Recorder(reply(403, content=b"<html>Forbidden</html>"))
    with pytest.raises(MonetixRequestRejected, match="allow-listed") as err:
        await make_client(rec).sale(sale(), CALLBACK)
    assert err.value.http_status == 403 and err.value.code is None


async def test_platform_echo_of_key_or_signature_is_scrubbed() -> None:
    def echo(req: httpx.Request) -> httpx.Response:
        sig = json.loads(req.content)["general"]["signature"]
        payload = {"status": "error", "message": f"bad {SECRET} / {sig}", "errors": [{"message": sig}]}
        return httpx.Response(400, json=payload)

    rec = Recorder(echo)
    with pytest.raises(MonetixRequestRejected) as err:
        await make_client(rec).sale(sale(), CALLBACK)
    sig = rec.body()["general"]["signature"]
    assert_clean(err.value, sig)
    assert sig not in str(err.value.errors) and SECRET not in err.value.platform_message


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (reply(500, {"status": "error"}), "HTTP 500"),
        (reply(502, content=b"Bad Gateway"), "HTTP 502"),
        (reply(503, content=b""), "HTTP 503"),
        (reply(429, content=b""), "HTTP 429"),
        (raises(httpx.ReadTimeout), "no answer within 30 s (ReadTimeout)"),
        (raises(httpx.ConnectTimeout), "no answer within 30 s (ConnectTimeout)"),
        (raises(httpx.RemoteProtocolError), "connection failed: RemoteProtocolError"),
        (raises(httpx.ReadError), "connection failed: ReadError"),
        (raises(httpx.ConnectError), "connection failed: ConnectError"),
        (reply(200, content=b"<html>maintenance</html>"), "not a JSON object"),
        (reply(200, content=b'["success"]'), "not a JSON object"),
        (reply(200, {"status": "processing"}), "status 'processing' instead of 'success'"),
        (reply(200, {"status": "success", "payment_id": "other"}), "names another payment (other)"),
    ],
)
async def test_no_clear_answer_to_a_sale_is_result_unknown(handler: Handler, reason: str) -> None:
    rec = Recorder(handler)
    with pytest.raises(MonetixResultUnknown) as err:
        await make_client(rec).sale(sale(), CALLBACK)
    e = err.value
    assert type(e) is MonetixResultUnknown and e.kind == "MonetixResultUnknown"
    assert (e.payment_id, e.operation) == ("bk_0001", "sale")
    assert reason in e.reason
    assert str(e).startswith("Monetix sale for payment bk_0001: result unknown (")
    assert str(e).endswith("resolve with the status request (at least 10 s later, §3.4), do not re-send the sale")
    assert_clean(e, rec.body()["general"]["signature"])
    assert len(rec.requests) == 1  # the client never re-sends on its own


async def test_clarification_timeout_is_result_unknown_with_its_own_advice() -> None:
    rec = Recorder(raises(httpx.ReadTimeout))
    with pytest.raises(MonetixResultUnknown, match="before sending the transaction ID again"):
        await make_client(rec).clarification("bk_0001", {"transaction_id": "9AB1CD2EF3"})


def test_every_error_is_a_monetix_error_with_a_stable_kind() -> None:
    kinds = {
        cls.kind
        for cls in (
            MonetixError, MonetixInvalidRequest, MonetixRequestRejected, MonetixDuplicatePayment,
            MonetixPaymentNotFound, MonetixResultUnknown, MonetixBadSignature,
        )
    }  # fmt: skip
    assert len(kinds) == 7
    assert issubclass(MonetixBadSignature, MonetixResultUnknown)
    assert issubclass(MonetixPaymentNotFound, MonetixError)


def test_secret_is_not_in_config_or_client_repr() -> None:
    cfg = MonetixGateConfig(project_id=PROJECT, secret_key=SecretStr(SECRET))
    client = MonetixGateClient(httpx.AsyncClient(), cfg)
    assert SECRET not in repr(cfg) and SECRET not in str(cfg) and SECRET not in repr(client)
    assert cfg.base_url == "https://api.trxhost.com" and cfg.timeout_seconds == 30


# ---------------------------------------------------------------------------------------- status


def snapshot(**payment: Any) -> dict[str, Any]:
    return {
        "project_id": PROJECT,
        "payment": {
            "id": "bk_0001",
            "type": "purchase",
            "status": "success",
            "date": "2024-12-07T19:08:45+0000",
            "method": "Bkash",
            "sum": {"amount": 100000, "currency": "BDT"},
            "description": "",
        }
        | payment,
        "customer": {"id": "customer_123"},
        "account": {"number": "123456789012"},
        "operations": [
            {
                "id": 5028800010128225,
                "type": "sale",
                "status": "awaiting customer",
                "code": "9999",
                "message": "Awaiting processing",
                "request_id": "1a23456bc7890de",
                "created_date": "2024-12-07T19:08:05+0000",
            },
            {
                "id": 5028800010128226,
                "type": "customer action",
                "status": "success",
                "date": "2024-12-07T19:08:45+0000",
                "request_id": "1a23456bc7890df",
                "sum_initial": {"amount": 100000, "currency": "BDT"},
                "code": "0",
                "message": "Success",
                "provider": {"id": 12345, "payment_id": "123abc123-123", "auth_code": ""},
            },
        ],
    }


def signed_snapshot(secret: str = SECRET, **payment: Any) -> dict[str, Any]:
    data = snapshot(**payment)
    return data | {"signature": sign(data, secret)}


async def test_signed_status_snapshot_is_verified_and_parsed() -> None:
    rec = Recorder(reply(200, signed_snapshot()))
    st = await make_client(rec).status("bk_0001")
    assert isinstance(st, MonetixStatus)
    assert (st.payment_id, st.status, st.final, st.signature_verified) == ("bk_0001", "success", True, True)
    assert (st.code, st.message, st.provider_payment_id) == ("0", "Success", "123abc123-123")
    assert (st.paid_poisha, st.sum_currency, st.account_number) == (100000, "BDT", "123456789012")
    assert [op.id for op in st.operations] == ["5028800010128225", "5028800010128226"]  # 16 digits, as text
    assert st.operations[0].status == "awaiting customer" and st.operations[1].initial_poisha == 100000


async def test_intermediate_status_carries_display_data_and_is_not_final() -> None:
    data = snapshot(status="awaiting customer")
    data["display_data"] = [{"type": "add_info", "title": "account_number", "data": "01700000000"}]
    data["operations"] = data["operations"][:1]
    rec = Recorder(reply(200, data | {"signature": sign(data, SECRET)}))
    st = await make_client(rec).status("bk_0001")
    assert st.status == "awaiting customer" and not st.final
    assert st.code == "9999" and st.provider_payment_id is None
    assert [(d.title, d.data) for d in st.display_data] == [("account_number", "01700000000")]


async def test_amount_changed_by_customer_is_reported_as_paid() -> None:
    rec = Recorder(reply(200, signed_snapshot(sum={"amount": 90000, "currency": "BDT"})))
    assert (await make_client(rec).status("bk_0001")).paid_poisha == 90000


async def test_natural_order_signed_snapshot_with_many_operations_verifies() -> None:
    data = snapshot()
    data["operations"] = [dict(data["operations"][0], id=i) for i in range(12)]
    rec = Recorder(reply(200, data | {"signature": sign(data, SECRET, order="natural")}))
    st = await make_client(rec).status("bk_0001")
    assert st.signature_verified and len(st.operations) == 12


async def test_unsigned_status_is_accepted_but_marked_unverified() -> None:
    rec = Recorder(reply(200, snapshot()))
    st = await make_client(rec).status("bk_0001")
    assert st.status == "success" and not st.signature_verified


async def test_status_with_a_bad_signature_is_not_trusted() -> None:
    rec = Recorder(reply(200, signed_snapshot(secret="the-test-project-key")))
    with pytest.raises(MonetixBadSignature) as err:
        await make_client(rec).status("bk_0001")
    assert isinstance(err.value, MonetixResultUnknown) and err.value.kind == "MonetixBadSignature"
    assert "does not match our secret key" in str(err.value)
    assert_clean(err.value, rec.body()["general"]["signature"], signed_snapshot()["signature"])


async def test_tampered_status_amount_is_not_trusted() -> None:
    data = signed_snapshot()
    data["payment"]["sum"]["amount"] = 1000000
    with pytest.raises(MonetixBadSignature):
        await make_client(Recorder(reply(200, data))).status("bk_0001")


NOT_FOUND = "Transaction not found"


@pytest.mark.parametrize("signed", [False, True])
async def test_unknown_payment_is_payment_not_found(signed: bool) -> None:
    data: dict[str, Any] = {"payment": {"status": "error"}, "errors": [{"code": "3061", "message": NOT_FOUND}]}
    if signed:
        data["signature"] = sign(data, SECRET)
    with pytest.raises(MonetixPaymentNotFound) as err:
        await make_client(Recorder(reply(200, data))).status("bk_0404")
    assert err.value.kind == "MonetixPaymentNotFound" and err.value.payment_id == "bk_0404"
    assert "Monetix has no payment bk_0404 (code 3061" in str(err.value)


async def test_not_found_with_a_forged_signature_is_not_believed() -> None:
    data: dict[str, Any] = {"payment": {"status": "error"}, "errors": [{"code": 3061, "message": NOT_FOUND}]}
    data["signature"] = sign(data, "someone-else")
    with pytest.raises(MonetixBadSignature):
        await make_client(Recorder(reply(200, data))).status("bk_0001")


async def test_not_found_as_http_404_is_payment_not_found() -> None:
    data = {"status": "error", "code": "3061", "message": "Transaction not found"}
    with pytest.raises(MonetixPaymentNotFound):
        await make_client(Recorder(reply(404, data))).status("bk_0001")


async def test_status_request_rejection_and_silence() -> None:
    with pytest.raises(MonetixRequestRejected, match="rejected the status for payment bk_0001 .*code 2442"):
        payload = {"status": "error", "code": "2442", "message": "Project ID not found"}
        await make_client(Recorder(reply(400, payload))).status("bk_0001")
    with pytest.raises(MonetixResultUnknown, match="may be repeated"):
        await make_client(Recorder(reply(504, content=b""))).status("bk_0001")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"project_id": PROJECT}, "no payment.id and payment.status"),
        (snapshot(id="bk_9999"), "describes another payment (bk_9999)"),
        (snapshot(sum={"amount": "1000.5", "currency": "BDT"}), "not a whole number"),
    ],
)
async def test_unusable_status_answers_are_result_unknown(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(MonetixResultUnknown) as err:
        await make_client(Recorder(reply(200, data))).status("bk_0001")
    assert reason in err.value.reason


def test_snapshot_reader_also_reads_a_callback_with_a_single_operation() -> None:
    callback = loads(
        '{"project_id":1234,"payment":{"id":"payment_47","type":"purchase","status":"decline",'
        '"sum":{"amount":100000,"currency":"BDT"}},"account":{"number":"123456789012"},'
        '"operation":{"id":47,"type":"sale","status":"decline","code":"20000","message":"General decline",'
        '"provider":{"id":12345,"payment_id":"123abc123-123","auth_code":""}}}'
    )
    st = MonetixStatus.from_body(callback)
    assert (st.status, st.final, st.code, st.message) == ("decline", True, "20000", "General decline")
    assert st.provider_payment_id == "123abc123-123" and st.operations[0].id == "47"


# ---------------------------------------------------------------------------------- Payment Page


PP_CONFIG = MonetixPaymentPageConfig(project_id=PROJECT, secret_key=SecretStr(SECRET))


def pp_params(**kw: Any) -> PaymentPageParams:
    fields: dict[str, Any] = {
        "payment_id": "payment_47",
        "amount": 100000,
        "customer_id": "customer_123",
        "first_name": "John",
        "last_name": "Doe",
        "email": "johndoe@example.com",
    }
    return PaymentPageParams(**(fields | kw))


def test_payment_page_url_carries_the_seed_parameters_and_verifies() -> None:
    url = build_payment_page_url(
        PP_CONFIG, pp_params(account_number="123456789012", merchant_callback_url=CALLBACK)
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "paymentpage.trxhost.com", "/payment")
    query = parts.query
    assert query.rsplit("&", 1)[1].startswith("signature=")  # signature last, as in §5.2 / P4
    params = dict(parse_qsl(query))
    assert params == {
        "project_id": "1234",
        "payment_id": "payment_47",
        "customer_id": "customer_123",
        "customer_first_name": "John",
        "customer_last_name": "Doe",
        "customer_email": "johndoe@example.com",
        "customer_account_number": "123456789012",
        "payment_currency": "BDT",
        "payment_amount": "100000",
        "force_payment_method": "bkash-wallet",
        "merchant_callback_url": CALLBACK,
        "signature": params["signature"],
    }
    assert verify(params, SECRET)
    assert not verify(params | {"payment_amount": "10000"}, SECRET)
    assert SECRET not in url


def test_payment_page_url_omits_unknown_account_and_encodes_spaces_like_php() -> None:
    url = build_payment_page_url(PP_CONFIG, pp_params(description="Deposit for B&W"))
    assert "customer_account_number" not in url and "merchant_callback_url" not in url
    assert "payment_description=Deposit+for+B%26W" in url
    assert verify(dict(parse_qsl(urlsplit(url).query)), SECRET)


def test_epay_widget_params_are_the_same_signed_values() -> None:
    widget = epay_widget_params(PP_CONFIG, pp_params(account_number="123456789012"))
    assert widget["project_id"] == PROJECT and widget["payment_amount"] == 100000
    assert widget["force_payment_method"] == "bkash-wallet"
    assert verify(widget, SECRET)
    url = build_payment_page_url(PP_CONFIG, pp_params(account_number="123456789012"))
    url_sig = dict(parse_qsl(urlsplit(url).query))["signature"]
    assert widget["signature"] == url_sig


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"amount": 9550}, "payment_amount 9550 (95.50 BDT) is not a multiple of 10 BDT (Monetix bKash rule)"),
        ({"amount": 95.5}, "payment_amount must be an integer number of poisha"),
        ({"currency": "USD"}, "payment_currency 'USD' is not supported"),
        ({"account_number": "+8801712345678"}, "customer_account_number '+8801712345678' must be"),
        ({"email": "nope"}, "customer_email 'nope' is not a well-formed email address"),
        (
            {"merchant_callback_url": "merchant.example/cb"},
            "merchant_callback_url 'merchant.example/cb' must be an absolute http(s) URL",
        ),
    ],
)
def test_payment_page_params_follow_the_sale_rules(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        pp_params(**override)
    assert expected in str(MonetixInvalidRequest.from_validation_error(err.value))


def test_payment_page_refuses_unvalidated_params() -> None:
    sneaky = PaymentPageParams.model_construct(
        payment_id="payment_47", amount=9550, currency="BDT", customer_id="c", first_name="J", last_name="D",
        email="j@example.com", account_number=None, description=None, merchant_callback_url=None,
    )  # fmt: skip
    with pytest.raises(MonetixInvalidRequest, match="payment_amount 9550"):
        build_payment_page_url(PP_CONFIG, sneaky)
