"""providers/bkash.py refund and refund status alone, v1 and v2, against an httpx.MockTransport:
the wire shapes (production.md §1, bkash-api.md §9), the three error envelopes and every refund
code's class (bkash-api.md §11), the one token replacement on 2079, and what counts as no answer."""

from __future__ import annotations

import json

import httpx
import pytest

from config import ConfigError, load_settings
from providers import bkash_codes as codes
from providers.bkash import BkashClient, BkashCredentials, BkashPaths, TokenManager
from providers.bkash_config import strip_api_version
from providers.bkash_errors import (
    BkashNoResponse,
    BkashRefundAlreadyRefunded,
    BkashRefundMerchantConfig,
    BkashRefundNotRefundable,
    BkashRefundOverLimit,
    BkashRefundWindowPassed,
    BkashRetryableError,
    BkashUnexpectedResponse,
    classify_refund,
)

BASE = "https://tokenized.pay.bka.sh/v1.2.0-beta"
CREDS = BkashCredentials(base_url=BASE, app_key="key-1", app_secret="s3cr3t-app",
                         username="merchant", password="pa55word")
V2 = BkashPaths(refund_api="v2")

V1_REFUND_OK = {"statusCode": "0000", "statusMessage": "Successful", "originalTrxID": "8KJ2056KWE",
                "refundTrxID": "8KN0056RMK", "transactionStatus": "Completed", "amount": "10",
                "currency": "BDT", "charge": "0.00",
                "completedTime": "2021-11-23T23:59:07:465 GMT+0600"}  # [OBS] §9
V2_REFUND_OK = {"originalTrxId": "8KJ2056KWE", "refundTrxId": "9AB0056XYZ",
                "refundTransactionStatus": "Completed", "refundAmount": "300.00"}


class FakeBkash:
    """Answers token calls with fresh tokens, everything else from a script; records requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.token_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/token/grant", "/token/refresh")):
            self.token_calls += 1
            return httpx.Response(200, json={"statusCode": "0000", "id_token":
                                             f"tok-{self.token_calls}", "expires_in": 3600,
                                             "refresh_token": "r"})
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]


def client(fake: FakeBkash, paths: BkashPaths | None = None) -> BkashClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    paths = paths or BkashPaths()
    return BkashClient(http, CREDS, paths, tokens=TokenManager(http, CREDS, paths))


async def refund(c: BkashClient, amount_poisha: int = 50000):
    return await c.refund_payment(payment_id="TR0011abc", trx_id="8KJ2056KWE",
                                  amount_poisha=amount_poisha, sku="room-12", reason="late checkout")


# --- v1 (the default) ------------------------------------------------------------------------

async def test_v1_refund_posts_payment_refund_with_the_two_decimal_amount_and_reads_the_answer():
    fake = FakeBkash(V1_REFUND_OK)
    result = await refund(client(fake))
    request = fake.requests[0]
    assert str(request.url) == f"{BASE}/tokenized/checkout/payment/refund"
    assert fake.bodies() == [{"paymentID": "TR0011abc", "amount": "500.00", "trxID": "8KJ2056KWE",
                              "sku": "room-12", "reason": "late checkout"}]
    assert request.headers["Authorization"] == "tok-1" and request.headers["X-App-Key"] == "key-1"
    assert (result.refund_trx_id, result.amount_poisha, result.completed) == \
        ("8KN0056RMK", 1000, True)  # "10" is 10.00 BDT
    assert result.original_trx_id == "8KJ2056KWE"


async def test_v1_refund_status_is_the_same_url_with_only_payment_id_and_trx_id():
    fake = FakeBkash(V1_REFUND_OK)
    status = await client(fake).refund_status(payment_id="TR0011abc", trx_id="8KJ2056KWE")
    assert str(fake.requests[0].url) == f"{BASE}/tokenized/checkout/payment/refund"
    assert fake.bodies() == [{"paymentID": "TR0011abc", "trxID": "8KJ2056KWE"}]
    assert [(r.refund_trx_id, r.amount_poisha, r.completed) for r in status.refunds] == \
        [("8KN0056RMK", 1000, True)]


async def test_v1_refund_status_before_any_refund_2002_is_an_empty_list():
    # [OFF] the plugin's docblock: "otherwise invalid payment id will return".
    fake = FakeBkash({"statusCode": "2002", "statusMessage": "Invalid Payment ID"})
    status = await client(fake).refund_status(payment_id="TR0011abc", trx_id="8KJ2056KWE")
    assert status.refunds == []


# --- v2 (configurable) -----------------------------------------------------------------------

async def test_v2_refund_uses_its_path_on_the_host_without_the_version_and_camel_case_fields():
    fake = FakeBkash(V2_REFUND_OK)
    result = await refund(client(fake, V2), 30000)
    assert str(fake.requests[0].url) == \
        "https://tokenized.pay.bka.sh/v2/tokenized-checkout/refund/payment/transaction"
    assert fake.bodies() == [{"paymentId": "TR0011abc", "trxId": "8KJ2056KWE",
                              "refundAmount": "300.00", "sku": "room-12",
                              "reason": "late checkout"}]
    # v2's success answer has no statusCode at all.
    assert (result.refund_trx_id, result.amount_poisha, result.completed) == \
        ("9AB0056XYZ", 30000, True)


async def test_v2_refund_status_lists_every_refund_of_the_transaction():
    fake = FakeBkash({"originalTrxId": "8KJ2056KWE", "refundTransactions": [
        {"refundTrxId": "R1", "refundTransactionStatus": "Completed", "refundAmount": "300.00"},
        {"refundTrxId": "R2", "refundTransactionStatus": "Completed", "refundAmount": 200}]})
    status = await client(fake, V2).refund_status(payment_id="TR0011abc", trx_id="8KJ2056KWE")
    assert str(fake.requests[0].url) == \
        "https://tokenized.pay.bka.sh/v2/tokenized-checkout/refund/payment/status"
    assert fake.bodies() == [{"paymentId": "TR0011abc", "trxId": "8KJ2056KWE"}]
    assert status.original_trx_id == "8KJ2056KWE"
    assert [(r.refund_trx_id, r.amount_poisha) for r in status.refunds] == \
        [("R1", 30000), ("R2", 20000)]


async def test_v2_refund_status_without_refunds_is_an_empty_list():
    fake = FakeBkash({"originalTrxId": "8KJ2056KWE", "refundTransactions": []})
    status = await client(fake, V2).refund_status(payment_id="TR0011abc", trx_id="8KJ2056KWE")
    assert status.refunds == []


async def test_v2_base_url_can_be_set_apart_from_the_v1_base():
    fake = FakeBkash(V2_REFUND_OK)
    await refund(client(fake, BkashPaths(refund_api="v2",
                                         refund_v2_base_url="https://refunds.example/")))
    assert str(fake.requests[0].url) == \
        "https://refunds.example/v2/tokenized-checkout/refund/payment/transaction"


@pytest.mark.parametrize("base,v2_base", [
    ("https://tokenized.pay.bka.sh/v1.2.0-beta", "https://tokenized.pay.bka.sh"),
    ("https://tokenized.sandbox.bka.sh/v1.2.0-beta/", "https://tokenized.sandbox.bka.sh"),
    ("http://127.0.0.1:8080/bkash/v1.2.0-beta", "http://127.0.0.1:8080/bkash"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
])
def test_the_v2_base_is_the_configured_base_without_its_version_segment(base, v2_base):
    assert strip_api_version(base) == v2_base
    assert BkashPaths().refund_v2_base(base) == v2_base


def test_refund_api_and_v2_base_are_settings():
    env = {"BKASH_BASE_URL": BASE, "BKASH_APP_KEY": "k", "BKASH_APP_SECRET": "x",
           "BKASH_USERNAME": "u", "BKASH_PASSWORD": "p",
           "PAYMENTS_CALLBACK_BASE_URL": "https://shop.example",
           "PAYMENTS_LINK_SECRET": "a-result-link-secret-of-32-chars-or-more"}
    assert load_settings(env).bkash_paths.refund_api == "v1"
    paths = load_settings({**env, "BKASH_REFUND_API": "v2",
                           "BKASH_REFUND_V2_BASE_URL": "https://r.example"}).bkash_paths
    assert (paths.refund_api, paths.refund_v2_base(BASE)) == ("v2", "https://r.example")
    with pytest.raises(ConfigError, match="BKASH_REFUND_API must be v1"):
        load_settings({**env, "BKASH_REFUND_API": "v3"})
    with pytest.raises(ConfigError, match="BKASH_REFUND_V2_BASE_URL must be an absolute"):
        load_settings({**env, "BKASH_REFUND_V2_BASE_URL": "refunds"})


# --- errors: every refund code, every envelope ------------------------------------------------

REFUND_CODE_CLASSES = {
    "2071": BkashRefundWindowPassed,
    "2072": BkashRefundOverLimit, "2026": BkashRefundOverLimit,
    "2034": BkashRefundAlreadyRefunded,
    "2074": BkashRefundNotRefundable, "2127": BkashRefundNotRefundable,
    "2056": BkashRefundNotRefundable, "2069": BkashRefundNotRefundable,
    "2002": BkashRefundMerchantConfig, "2073": BkashRefundMerchantConfig,
    "2075": BkashRefundMerchantConfig, "2076": BkashRefundMerchantConfig,
    "2077": BkashRefundMerchantConfig, "2078": BkashRefundMerchantConfig,
    "2080": BkashRefundMerchantConfig, "2081": BkashRefundMerchantConfig,
    "2082": BkashRefundMerchantConfig, "2028": BkashRefundMerchantConfig,
    "2035": BkashRefundMerchantConfig, "2042": BkashRefundMerchantConfig,
    "2065": BkashRefundMerchantConfig, "2001": BkashRefundMerchantConfig,
    "2079": BkashRetryableError, "503": BkashRetryableError, "2003": BkashRetryableError,
    "2020": BkashRetryableError, "2024": BkashRetryableError,
}


def _envelopes(code: str) -> list:
    return [
        {"statusCode": code, "statusMessage": "from bKash"},
        {"errorCode": code, "errorMessageEn": "from bKash", "errorMessageBn": "বিকাশ"},
        httpx.Response(400, json={"internalCode": "RFD-17", "externalCode": code,
                                  "errorMessageEn": "from bKash", "errorMessageBn": "বিকাশ"}),
        httpx.Response(400, json={"internalCode": code, "errorMessageEn": "from bKash"}),
    ]


@pytest.mark.parametrize("code,error", sorted(REFUND_CODE_CLASSES.items()))
@pytest.mark.parametrize("envelope", range(4))
async def test_every_refund_code_in_every_envelope_is_its_typed_error(code, error, envelope):
    answer = _envelopes(code)[envelope]
    # 2079 is answered twice: the client replaces the token once and sends once more.
    fake = FakeBkash(answer, answer)
    with pytest.raises(error) as info:
        await refund(client(fake, V2 if envelope >= 2 else None))
    assert info.value.code == code
    assert f"{code} from bKash" in str(info.value) and "TR0011abc" in str(info.value)


def test_refund_code_classes_do_not_overlap_and_every_documented_refund_code_has_one():
    classes = [codes.REFUND_RETRYABLE_CODES, codes.REFUND_OVER_LIMIT_CODES,
               codes.REFUND_WINDOW_CODES, codes.REFUND_ALREADY_REFUNDED_CODES,
               codes.REFUND_NOT_REFUNDABLE_CODES, codes.REFUND_MERCHANT_CONFIG_CODES]
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            assert not a & b
    for code in [str(c) for c in range(2071, 2083)] + ["2127"]:
        assert not isinstance(classify_refund("refund", code, "m"), BkashUnexpectedResponse), code
    assert isinstance(classify_refund("refund", "7777", "??"), BkashUnexpectedResponse)


def test_refund_refusals_say_what_to_do():
    assert "remainder" in str(classify_refund("refund", "2072", "Refund amount not valid"))
    assert "sku" in str(classify_refund("refund", "2073", "Invalid SKU"))
    assert "15 days" in str(classify_refund("refund", "2071", "Refund after specified days"))


async def test_2079_replaces_the_token_once_and_sends_the_refund_once_more():
    fake = FakeBkash({"errorCode": "2079", "errorMessageEn": "Invalid app Token"}, V1_REFUND_OK)
    result = await refund(client(fake))
    assert result.refund_trx_id == "8KN0056RMK"
    assert [r.headers["Authorization"] for r in fake.requests] == ["tok-1", "tok-2"]
    assert fake.token_calls == 2


async def test_a_second_2079_is_retryable_not_a_loop():
    answer = {"errorCode": "2079", "errorMessageEn": "Invalid app Token"}
    fake = FakeBkash(answer, answer)
    with pytest.raises(BkashRetryableError):
        await refund(client(fake))
    assert len(fake.requests) == 2


@pytest.mark.parametrize("answer,sent", [
    (httpx.Response(503, text="Service Unavailable"), True),
    (httpx.Response(502, json={"errorCode": "2072", "errorMessageEn": "x"}), True),
    (httpx.Response(400, text="Bad Request"), True),
    (httpx.Response(200, text="<html>"), True),
    ({"message": "Internal server error"}, True),
    (httpx.ReadTimeout("timed out"), True),
    (httpx.RemoteProtocolError("peer closed"), True),
    (httpx.ConnectError("refused"), False),
])
async def test_a_lost_or_unreadable_refund_answer_is_no_response(answer, sent):
    fake = FakeBkash(answer)
    with pytest.raises(BkashNoResponse) as info:
        await refund(client(fake))
    assert info.value.request_sent is sent


async def test_a_success_answer_without_a_refund_trx_id_is_an_unexpected_shape():
    fake = FakeBkash({"statusCode": "0000", "statusMessage": "Successful"})
    with pytest.raises(BkashUnexpectedResponse) as info:
        await refund(client(fake))
    assert info.value.code is None


async def test_a_v2_path_bkash_does_not_serve_names_the_setting():
    fake = FakeBkash(httpx.Response(404, json={"message": "Not Found"}))
    with pytest.raises(BkashRefundMerchantConfig, match="BKASH_REFUND_API"):
        await refund(client(fake, V2))


async def test_refund_errors_carry_no_secret_or_token():
    texts = []
    for answer in ({"errorCode": "2072", "errorMessageEn": "Refund amount not valid"},
                   httpx.Response(401, json={"message": "Unauthorized"})):
        fake = FakeBkash(answer, answer)
        with pytest.raises(Exception) as info:  # noqa: PT011
            await refund(client(fake))
        texts += [str(info.value), repr(info.value)]
    for text in texts:
        assert "s3cr3t-app" not in text and "pa55word" not in text and "tok-" not in text
