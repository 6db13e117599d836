"""Unit tests of providers/bkash.py and its token manager (providers/bkash_tokens.py) alone: the HTTP
peer is an httpx.MockTransport."""

import json

import httpx
import pytest

from providers.bkash import BkashClient, BkashCredentials, BkashPaths, TokenManager
from providers.bkash_errors import (
    ALREADY_SETTLED_CODES,
    CUSTOMER_DECLINE_CODES,
    MERCHANT_CONFIG_CODES,
    RETRYABLE_CODES,
    BkashAlreadySettled,
    BkashCustomerDeclined,
    BkashInvalidState,
    BkashMerchantConfigError,
    BkashNoResponse,
    BkashRetryableError,
    BkashTokenRateLimited,
    BkashUnexpectedResponse,
    classify,
)

CREDS = BkashCredentials(base_url="https://bkash.test/v1.2.0-beta", app_key="key-1",
                         app_secret="s3cr3t-app", username="merchant", password="pa55word")


class FakeBkash:
    """Records requests; answers token calls with fresh tokens and other calls from a script."""

    def __init__(self):
        self.requests: list[httpx.Request] = []
        self.token_calls: list[str] = []
        self.answers: list = []
        self.n = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/token/grant") or path.endswith("/token/refresh"):
            self.token_calls.append(path.rsplit("/", 1)[-1])
            self.n += 1
            return httpx.Response(200, json={"statusCode": "0000", "statusMessage": "Successful",
                                             "id_token": f"tok-{self.n}", "token_type": "Bearer",
                                             "expires_in": 3600, "refresh_token": "refresh-1"})
        answer = self.answers.pop(0) if self.answers else {"statusCode": "0000",
                                                           "paymentID": "TR1",
                                                           "transactionStatus": "Authorized",
                                                           "trxID": "ABC", "amount": "500.00"}
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(fake, clock=None, **kw):
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    tokens = TokenManager(http, CREDS, BkashPaths(), clock=clock or Clock(), **kw)
    return BkashClient(http, CREDS, tokens=tokens)


async def test_token_is_granted_once_and_reused_by_every_call():
    fake = FakeBkash()
    client = make(fake)
    for _ in range(5):
        await client.query_payment("TR1")
    assert fake.token_calls == ["grant"]
    call = fake.requests[-1]
    assert call.headers["Authorization"] == "tok-1"  # raw id_token, no "Bearer " (§2.1)
    assert call.headers["X-App-Key"] == "key-1"
    grant = fake.requests[0]
    assert grant.headers["username"] == "merchant" and grant.headers["password"] == "pa55word"
    assert json.loads(grant.content) == {"app_key": "key-1", "app_secret": "s3cr3t-app"}


async def test_token_is_refreshed_after_fifty_minutes_not_granted_again():
    fake, clock = FakeBkash(), Clock()
    client = make(fake, clock)
    await client.query_payment("TR1")
    clock.now += 50 * 60 + 1
    await client.query_payment("TR1")
    assert fake.token_calls == ["grant", "refresh"]
    assert json.loads(fake.requests[-2].content)["refresh_token"] == "refresh-1"
    assert fake.requests[-1].headers["Authorization"] == "tok-2"


async def test_a_401_regrants_once_and_repeats_the_call():
    fake = FakeBkash()
    client = make(fake)
    await client.query_payment("TR1")
    fake.answers = [httpx.Response(401, json={"message": "The incoming token has expired"})]
    status = await client.query_payment("TR1")
    assert status.transaction_status == "Authorized"
    assert fake.token_calls == ["grant", "grant"]


async def test_a_second_401_is_a_configuration_error_not_a_loop():
    fake = FakeBkash()
    client = make(fake)
    fake.answers = [httpx.Response(401, json={"message": "Unauthorized"})] * 2
    with pytest.raises(BkashMerchantConfigError):
        await client.query_payment("TR1")
    assert fake.token_calls == ["grant", "grant"]


async def test_never_more_than_two_token_calls_an_hour():
    fake, clock = FakeBkash(), Clock()
    client = make(fake, clock)
    await client.query_payment("TR1")              # grant
    clock.now += 50 * 60 + 1
    await client.query_payment("TR1")              # refresh (2nd call this hour)
    fake.answers = [httpx.Response(401, json={"message": "Unauthorized"})]
    with pytest.raises(BkashTokenRateLimited) as info:
        await client.query_payment("TR1")          # a third call would get us blocked
    assert info.value.retry_after is not None
    assert len(fake.token_calls) == 2


async def test_refresh_is_postponed_while_the_budget_is_spent_and_the_token_valid():
    fake, clock = FakeBkash(), Clock()
    client = make(fake, clock)
    await client.query_payment("TR1")                                 # grant at t0
    fake.answers = [httpx.Response(401, json={"message": "Unauthorized"})]
    await client.query_payment("TR1")                                 # re-grant at t0
    clock.now += 50 * 60 + 1
    await client.query_payment("TR1")  # refresh due, budget spent, token valid → keep it
    assert fake.token_calls == ["grant", "grant"]
    clock.now += 10 * 60  # an hour after the first calls: the budget is back
    await client.query_payment("TR1")
    assert fake.token_calls == ["grant", "grant", "refresh"]


async def test_concurrent_calls_share_one_grant():
    import asyncio

    fake = FakeBkash()
    client = make(fake)
    await asyncio.gather(*(client.query_payment("TR1") for _ in range(50)))
    assert fake.token_calls == ["grant"]


async def test_create_sends_auth_and_capture_body_with_two_decimal_amount():
    fake = FakeBkash()
    client = make(fake)
    fake.answers = [{"statusCode": "0000", "paymentID": "TR0011x", "bkashURL": "https://pay/x",
                     "transactionStatus": "Initiated",
                     "successCallbackURL": "https://m/cb?paymentID=TR0011x&status=success&signature=abc"}]
    created = await client.create_payment(amount_poisha=50000, invoice_number="INV-1",
                                          payer_reference="inv-1", callback_url="https://m/cb")
    body = json.loads(fake.requests[-1].content)
    assert body == {"mode": "0011", "payerReference": "inv-1", "callbackURL": "https://m/cb",
                    "amount": "500.00", "currency": "BDT", "intent": "authorization",
                    "merchantInvoiceNumber": "INV-1", "merchantAssociationInfo": ""}
    assert created.payment_id == "TR0011x" and created.bkash_url == "https://pay/x"


async def test_void_path_is_configurable_for_the_portal_spelling():
    fake = FakeBkash()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    paths = BkashPaths(void="/tokenized/checkout/payment/confirm/capture/void")
    client = BkashClient(http, CREDS, paths)
    fake.answers = [{"statusCode": "0000", "paymentID": "TR1", "transactionStatus": "Cancelled"}]
    await client.void_payment("TR1")
    assert fake.requests[-1].url.path.endswith("/payment/confirm/capture/void")


@pytest.mark.parametrize("answer,error", [
    ({"statusCode": "2023", "statusMessage": "Insufficient Balance"}, BkashCustomerDeclined),
    ({"statusCode": "2062", "statusMessage": "The payment has already been completed"},
     BkashAlreadySettled),
    ({"errorCode": "2069", "errorMessage": "Transaction has already been cancelled"},
     BkashAlreadySettled),
    ({"statusCode": "2056", "statusMessage": "Invalid Payment State"}, BkashInvalidState),
    ({"statusCode": "2003", "statusMessage": "Process failed"}, BkashRetryableError),
    ({"statusCode": "2001", "statusMessage": "Invalid App Key"}, BkashMerchantConfigError),
    ({"statusCode": "7777", "statusMessage": "??"}, BkashUnexpectedResponse),
    ({"message": "Internal server error"}, BkashNoResponse),
    (httpx.Response(503, text="Service Unavailable"), BkashNoResponse),
    (httpx.Response(200, text="<html>"), BkashNoResponse),
    (httpx.ReadTimeout("timed out"), BkashNoResponse),
    (httpx.RemoteProtocolError("peer closed"), BkashNoResponse),
    (httpx.ConnectError("refused"), BkashNoResponse),
])
async def test_business_and_transport_errors_become_typed_errors(answer, error):
    fake = FakeBkash()
    client = make(fake)
    await client.query_payment("TR1")
    fake.answers = [answer]
    with pytest.raises(error) as info:
        await client.capture_payment("TR1")
    assert "TR1" in str(info.value)


def test_every_documented_code_has_exactly_one_class():
    classes = [RETRYABLE_CODES, ALREADY_SETTLED_CODES, CUSTOMER_DECLINE_CODES,
               MERCHANT_CONFIG_CODES]
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            assert not a & b
    assert isinstance(classify("capture", "2119", "processed"), BkashAlreadySettled)
    assert isinstance(classify("execute", "2038", "blocked"), BkashCustomerDeclined)
    assert isinstance(classify("create", "2031", "bad"), BkashMerchantConfigError)


def test_configuration_errors_say_what_to_fix():
    err = classify("create", "2049", "Invalid Merchant Callback URL")
    assert "PAYMENTS_CALLBACK_BASE_URL" in str(err)


async def test_secrets_never_appear_in_error_messages_or_reprs():
    fake = FakeBkash()
    client = make(fake)
    texts = [repr(CREDS), str(CREDS)]
    for answer in ({"statusCode": "2001", "statusMessage": "Invalid App Key"},
                   httpx.Response(401, json={"message": "Unauthorized"})):
        fake.answers = [answer, answer]
        try:
            await client.capture_payment("TR1")
        except Exception as exc:  # noqa: BLE001
            texts.append(str(exc))
            texts.append(repr(exc))
    for text in texts:
        assert "s3cr3t-app" not in text and "pa55word" not in text and "tok-" not in text


async def test_a_restarted_or_second_worker_process_reuses_the_stored_token(tmp_path):
    from providers.bkash import FileTokenStore

    fake, clock = FakeBkash(), Clock()
    store_path = tmp_path / "token.json"
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))

    def process():
        tokens = TokenManager(http, CREDS, BkashPaths(), clock=clock,
                              store=FileTokenStore(store_path))
        return BkashClient(http, CREDS, tokens=tokens)

    await process().query_payment("TR1")
    await process().query_payment("TR1")        # a restart after kill -9
    await process().query_payment("TR1")        # a sibling worker process
    assert fake.token_calls == ["grant"]
    assert oct(store_path.stat().st_mode & 0o777) == "0o600"
    assert "s3cr3t-app" not in store_path.read_text() and "pa55word" not in store_path.read_text()


async def test_the_hourly_budget_is_shared_between_processes(tmp_path):
    from providers.bkash import FileTokenStore

    fake, clock = FakeBkash(), Clock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    managers = [TokenManager(http, CREDS, BkashPaths(), clock=clock,
                             store=FileTokenStore(tmp_path / "t.json")) for _ in range(3)]
    first = await managers[0].token()
    second = await managers[1].replace(first)   # 401 seen by process 2: one re-grant
    assert await managers[2].replace(first) == second  # process 3 sees it was already replaced
    with pytest.raises(BkashTokenRateLimited):
        await managers[2].replace(second)       # a third call this hour would get us blocked
    assert fake.token_calls == ["grant", "grant"]


async def test_a_token_call_leaves_the_hour_a_little_after_the_hour_bkash_counts_on_arrival():
    fake, clock = FakeBkash(), Clock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    tokens = TokenManager(http, CREDS, BkashPaths(), clock=clock)
    first = await tokens.token()
    clock.now += 1
    second = await tokens.replace(first)
    clock.now += 3599.5  # 3600 s after the first call as we sent it; bKash saw it arrive later
    with pytest.raises(BkashTokenRateLimited):
        await tokens.replace(second)
    clock.now += 1
    await tokens.replace(second)
    assert fake.token_calls == ["grant", "grant", "grant"]
