"""activities/bkash.py ``bkash_refund`` in temporalio's ActivityEnvironment, against a bKash that
keeps a refund ledger behind an httpx.MockTransport: a lost refund answer is resolved by refund
status before anything is re-sent, so bKash holds exactly one refund, never two; refusals are
final and typed by RefundErrorKind; v1 and v2 wire shapes."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.bkash import BkashActivities
from contracts.money import format_bdt, parse_bdt
from contracts.refunds import BkashRefundCall, RefundActivity, RefundErrorKind, RefundStage
from providers.bkash import BkashClient, BkashCredentials, BkashPaths, TokenManager
from workflows.refunds import REFUND_RETRY

CREDS = BkashCredentials(base_url="https://tokenized.sandbox.bka.sh/v1.2.0-beta", app_key="key-1",
                         app_secret="s3cr3t-app", username="merchant", password="pa55word")
PAYMENT, TRX = "TR0011Hk17jHV1795304877404", "8KJ2056KWE"


class LedgerBkash:
    """bKash's refund side with its own ledger: refunds applied, remaining amount, the window,
    v1 (latest refund only, 2002 before any) or v2 (the list) refund status, and lost answers."""

    def __init__(self, api: str = "v1", captured_poisha: int = 100000) -> None:
        self.api = api
        self.captured_poisha = captured_poisha
        self.refunds: list[tuple[str, int, str]] = []  # refundTrxID, poisha, status
        self.refund_requests: list[dict] = []
        self.status_requests: list[dict] = []
        self.urls: list[str] = []
        self.lose: tuple[str, str] | None = None  # ("before"|"after", "timeout"|"dropped"|"503")
        self.refuse: str | None = None            # answer the next refund with this code,
        self.refuse_times = 1                     # that many times
        self.status_of_new = "Completed"

    # -- the wire ---------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/token/grant", "/token/refresh")):
            return httpx.Response(200, json={"statusCode": "0000", "id_token": "tok-secret-1",
                                             "expires_in": 3600, "refresh_token": "r"})
        self.urls.append(str(request.url))
        body = json.loads(request.content)
        if self._is_status(request, body):
            self.status_requests.append(body)
            return self._status()
        self.refund_requests.append(body)
        return self._refund(body)

    def _is_status(self, request: httpx.Request, body: dict) -> bool:
        if self.api == "v2":
            return request.url.path.endswith("/refund/payment/status")
        return "amount" not in body

    def _refund(self, body: dict) -> httpx.Response:
        lose, self.lose = self.lose, None
        if lose and lose[0] == "before":
            return _lost(lose[1])
        if self.refuse:
            code = self.refuse
            self.refuse_times -= 1
            if self.refuse_times <= 0:
                self.refuse = None
            return self._error(code, "refused")
        poisha = parse_bdt(body["refundAmount" if self.api == "v2" else "amount"])
        if poisha > self.captured_poisha - sum(p for _, p, s in self.refunds if s != "Failed"):
            return self._error("2072", "Refund amount not valid")
        refund = (f"RFD{len(self.refunds) + 1:04d}", poisha, self.status_of_new)
        self.refunds.append(refund)
        if lose:
            return _lost(lose[1])
        return httpx.Response(200, json=self._entry(refund, top=True))

    def _status(self) -> httpx.Response:
        if self.api == "v2":
            return httpx.Response(200, json={"originalTrxId": TRX, "refundTransactions": [
                self._entry(r) for r in self.refunds]})
        if not self.refunds:
            return self._error("2002", "Invalid Payment ID")
        return httpx.Response(200, json=self._entry(self.refunds[-1], top=True))

    def _entry(self, refund: tuple[str, int, str], top: bool = False) -> dict:
        trx, poisha, status = refund
        if self.api == "v2":
            entry = {"refundTrxId": trx, "refundTransactionStatus": status,
                     "refundAmount": format_bdt(poisha)}
            return {"originalTrxId": TRX, **entry} if top else entry
        return {"statusCode": "0000", "statusMessage": "Successful", "originalTrxID": TRX,
                "refundTrxID": trx, "transactionStatus": status, "amount": format_bdt(poisha),
                "currency": "BDT", "charge": "0.00"}

    def _error(self, code: str, message: str) -> httpx.Response:
        if self.api == "v2":
            return httpx.Response(400, json={"internalCode": code, "externalCode": code,
                                             "errorMessageEn": message, "errorMessageBn": "-"})
        return httpx.Response(200, json={"statusCode": code, "statusMessage": message})

    @property
    def refunded_poisha(self) -> int:
        return sum(p for _, p, s in self.refunds if s == "Completed")


def _lost(how: str) -> httpx.Response:
    if how == "timeout":
        raise httpx.ReadTimeout("timed out")
    if how == "dropped":
        raise httpx.RemoteProtocolError("peer closed connection")
    return httpx.Response(503, text="Service Unavailable")


def activities(bkash: LedgerBkash) -> BkashActivities:
    http = httpx.AsyncClient(transport=httpx.MockTransport(bkash))
    paths = BkashPaths(refund_api=bkash.api)
    client = BkashClient(http, CREDS, paths, tokens=TokenManager(http, CREDS, paths))
    return BkashActivities(client, link_secret=b"l" * 32)


def call(amount_poisha: int = 30000, known: list[str] | None = None,
         refund_id: str = "R-1") -> BkashRefundCall:
    return BkashRefundCall(payment_id=PAYMENT, trx_id=TRX, amount_poisha=amount_poisha,
                           sku="room-12", reason="late checkout", refund_id=refund_id,
                           known_refund_trx_ids=known or [])


async def attempt(acts: BkashActivities, c: BkashRefundCall, n: int = 1):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=n, activity_type=RefundActivity.BKASH_REFUND)
    return await env.run(acts.bkash_refund, c)


async def failed_attempt(acts: BkashActivities, c: BkashRefundCall, n: int = 1) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await attempt(acts, c, n)
    return info.value


def test_the_activity_is_registered_under_the_workflows_name():
    defn = activity._Definition.must_from_callable(BkashActivities.bkash_refund)
    assert defn.name == RefundActivity.BKASH_REFUND == "bkash_refund"


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_first_attempt_sends_one_refund_and_asks_no_refund_status(api):
    bkash = LedgerBkash(api)
    result = await attempt(activities(bkash), call())
    assert (result.status, result.provider_refund_id, result.amount_poisha, result.reconciled) == \
        (RefundStage.SUCCEEDED, "RFD0001", 30000, False)
    assert len(bkash.refund_requests) == 1 and bkash.status_requests == []
    assert bkash.refunded_poisha == 30000


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("how", ["timeout", "dropped", "503"])
async def test_lost_answer_after_bkash_applied_it_is_found_by_refund_status_not_sent_again(api,
                                                                                           how):
    bkash = LedgerBkash(api)
    acts = activities(bkash)
    bkash.lose = ("after", how)
    err = await failed_attempt(acts, call())
    assert err.type == RefundErrorKind.RESULT_UNKNOWN and not err.non_retryable
    assert "refund status" in err.message and PAYMENT in err.message and "R-1" in err.message

    result = await attempt(acts, call(), n=2)
    assert (result.status, result.provider_refund_id, result.reconciled) == \
        (RefundStage.SUCCEEDED, "RFD0001", True)
    assert len(bkash.refund_requests) == 1, "a second refund request was sent"
    assert len(bkash.status_requests) == 1
    assert bkash.refunds == [("RFD0001", 30000, "Completed")]  # exactly one refund at bKash


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("how", ["timeout", "dropped", "503"])
async def test_lost_answer_before_bkash_applied_it_is_sent_exactly_once_more(api, how):
    bkash = LedgerBkash(api)
    acts = activities(bkash)
    bkash.lose = ("before", how)
    err = await failed_attempt(acts, call())
    assert err.type == RefundErrorKind.RESULT_UNKNOWN and not err.non_retryable

    result = await attempt(acts, call(), n=2)
    assert (result.status, result.provider_refund_id, result.reconciled) == \
        (RefundStage.SUCCEEDED, "RFD0001", False)
    assert len(bkash.status_requests) == 1 and len(bkash.refund_requests) == 2  # lost + this one
    assert bkash.refunds == [("RFD0001", 30000, "Completed")]


async def test_a_worker_killed_mid_refund_is_resolved_by_refund_status_on_the_next_attempt():
    bkash = LedgerBkash()
    acts = activities(bkash)
    await attempt(acts, call())          # bKash applied it; the result never reached Temporal
    result = await attempt(acts, call(), n=2)
    assert result.reconciled and result.provider_refund_id == "RFD0001"
    assert len(bkash.refund_requests) == 1 and bkash.refunded_poisha == 30000


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_an_earlier_refund_of_the_same_amount_is_not_taken_for_this_one(api):
    bkash = LedgerBkash(api)
    acts = activities(bkash)
    first = await attempt(acts, call(refund_id="R-1"))
    bkash.lose = ("before", "timeout")
    await failed_attempt(acts, call(known=[first.provider_refund_id], refund_id="R-2"))
    second = await attempt(acts, call(known=[first.provider_refund_id], refund_id="R-2"), n=2)
    assert (second.provider_refund_id, second.reconciled) == ("RFD0002", False)
    assert [r[0] for r in bkash.refunds] == ["RFD0001", "RFD0002"]


async def test_v2_status_list_finds_the_lost_refund_beside_earlier_ones():
    bkash = LedgerBkash("v2")
    acts = activities(bkash)
    first = await attempt(acts, call(20000, refund_id="R-1"))
    bkash.lose = ("after", "timeout")
    await failed_attempt(acts, call(known=[first.provider_refund_id], refund_id="R-2"))
    result = await attempt(acts, call(known=[first.provider_refund_id], refund_id="R-2"), n=2)
    assert (result.provider_refund_id, result.reconciled) == ("RFD0002", True)
    assert len(bkash.refund_requests) == 2 and bkash.refunded_poisha == 50000
    assert all("/v2/tokenized-checkout/refund/payment/" in u for u in bkash.urls)
    assert all(u.startswith("https://tokenized.sandbox.bka.sh/v2/") for u in bkash.urls)
    assert set(bkash.refund_requests[0]) == {"paymentId", "trxId", "refundAmount", "sku", "reason"}
    assert bkash.status_requests == [{"paymentId": PAYMENT, "trxId": TRX}]


async def test_a_refund_bkash_still_holds_as_pending_is_waited_for_not_sent_again():
    bkash = LedgerBkash("v2")
    acts = activities(bkash)
    bkash.status_of_new = "Pending"
    err = await failed_attempt(acts, call())
    assert err.type == RefundErrorKind.RESULT_UNKNOWN and not err.non_retryable
    err = await failed_attempt(acts, call(), n=2)
    assert err.type == RefundErrorKind.RESULT_UNKNOWN and "'Pending'" in err.message
    assert len(bkash.refund_requests) == 1
    bkash.refunds[0] = ("RFD0001", 30000, "Completed")
    result = await attempt(acts, call(), n=3)
    assert result.reconciled and len(bkash.refund_requests) == 1


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_over_limit_is_a_final_over_limit_error_that_says_what_to_do(api):
    bkash = LedgerBkash(api, captured_poisha=20000)
    err = await failed_attempt(activities(bkash), call(30000))
    assert err.type == RefundErrorKind.OVER_LIMIT and err.non_retryable
    assert "2072" in err.message and PAYMENT in err.message and "R-1" in err.message
    assert "300.00 BDT" in err.message and "remainder" in err.message
    assert bkash.refunds == []


@pytest.mark.parametrize("code,kind", [
    ("2071", RefundErrorKind.WINDOW_PASSED),
    ("2034", RefundErrorKind.ALREADY_REFUNDED),
    ("2074", RefundErrorKind.NOT_REFUNDABLE),
    ("2127", RefundErrorKind.NOT_REFUNDABLE),
    ("2073", RefundErrorKind.MERCHANT_CONFIG),
    ("2077", RefundErrorKind.MERCHANT_CONFIG),
    ("2082", RefundErrorKind.MERCHANT_CONFIG),
])
@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_refusals_are_final_and_typed(code, kind, api):
    bkash = LedgerBkash(api)
    bkash.refuse = code
    err = await failed_attempt(activities(bkash), call())
    assert (err.type, err.non_retryable) == (kind, True)
    assert kind in REFUND_RETRY.non_retryable_error_types
    assert code in err.message and PAYMENT in err.message


@pytest.mark.parametrize("code", ["503", "2003", "2079"])
async def test_transient_answers_are_retryable(code):
    bkash = LedgerBkash()
    bkash.refuse, bkash.refuse_times = code, 2  # 2079: once more with a new token, then retry
    err = await failed_attempt(activities(bkash), call())
    assert (err.type, err.non_retryable) == (RefundErrorKind.RETRYABLE, False)
    assert bkash.refunds == []


async def test_an_invalid_app_token_2079_gets_one_new_token_and_one_more_send():
    bkash = LedgerBkash()
    bkash.refuse = "2079"
    result = await attempt(activities(bkash), call())
    assert result.status is RefundStage.SUCCEEDED and len(bkash.refund_requests) == 2
    assert bkash.refunds == [("RFD0001", 30000, "Completed")]


async def test_a_request_that_never_left_is_retryable_not_unknown():
    def refuse_connection(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse_connection))
    tokens = TokenManager(http, CREDS, BkashPaths())
    tokens.state.id_token, tokens.state.obtained_at, tokens.state.expires_at = \
        "tok-secret-1", 9e12, 9e12 + 3600  # a valid token, so the refund is the first call
    acts = BkashActivities(BkashClient(http, CREDS, tokens=tokens), link_secret=b"l" * 32)
    err = await failed_attempt(acts, call())
    assert (err.type, err.non_retryable) == (RefundErrorKind.RETRYABLE, False)
    assert "never reached bKash" in err.message


async def test_messages_carry_no_token_or_secret():
    bkash = LedgerBkash(captured_poisha=100)
    acts = activities(bkash)
    messages = [(await failed_attempt(acts, call())).message]
    bkash.lose = ("after", "timeout")
    bkash.captured_poisha = 100000
    messages.append((await failed_attempt(acts, call())).message)
    for text in messages:
        assert "tok-secret" not in text and "s3cr3t-app" not in text and "pa55word" not in text
