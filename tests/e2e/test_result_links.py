"""Issue 9 §2: no payment readable by outsiders. The callbackURL bKash gets carries a per-payment
token (HMAC of the workflow id under PAYMENTS_LINK_SECRET) that no workflow input or history holds;
the return and the result page need it, and anything else — no token, a wrong one, an unknown or
foreign id, junk — gets one answer without Temporal being asked anything."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from temporalio import activity
from temporalio.client import Client
from tests.support.histories import history_text
from tests.conftest import DATA_CONVERTER  # the project's one converter

from config import ConfigError, load_endpoint_settings, load_settings
from contracts.bkash import (
    BkashActivity,
    BkashStage,
    CreatedPaymentInfo,
    CreatePaymentInput,
    return_link_token,
)
from embedded import free_port, serve_asgi
from endpoint.app import create_app
from endpoint.bkash_returns import ResultLinks
from merchant_client import report_service_delivered
from tests.conftest import LINK_SECRET, running_stack
from tests.support.bkash import (
    kinds,
    link_token,
    pay,
    result,
    result_url,
    return_url,
    state,
    wait_for_stage,
)

SECRET = LINK_SECRET.encode()
OTHER_SECRET = b"another-merchants-link-secret-0123456789"


async def unreachable_temporal() -> Client:
    """A client whose every call fails: nothing listens at its address."""
    return await Client.connect(f"127.0.0.1:{free_port()}", lazy=True,
                                data_converter=DATA_CONVERTER)


async def bkash_redirect(stack, payment_id: str, status: str = "success") -> str:
    """The URL bKash sends the browser to, built from what the sandbox holds for the payment."""
    p = await stack.sandbox.payment(payment_id)
    return (f"{p['callback_url']}?paymentID={payment_id}&status={status}"
            f"&signature={p['signature']}&apiVersion=1.2.0-beta/")


async def test_the_callback_url_bkash_gets_carries_the_token_and_no_history_does(
        stack, collected_logs):
    req, url = await pay(stack)
    token = link_token(stack, req.workflow_id)
    sent = (await stack.sandbox.payment(url.payment_id))["callback_url"]
    assert sent == f"{req.callback_url}/{token}"
    journey = await stack.customer.approve(url.bkash_url)
    assert "authorized" in journey.final_text.lower() and "500.00 BDT" in journey.final_text
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    history = await history_text(stack, req.workflow_id)
    assert req.callback_url in history  # the workflow's callback URL: as it was, without a token
    assert token not in history and LINK_SECRET not in history
    assert not [line for line in collected_logs if LINK_SECRET in line]


@pytest.mark.parametrize("route", ["return", "result"])
async def test_anything_but_a_payments_link_gets_one_answer_without_asking_temporal(route):
    links = ResultLinks(SECRET)
    app = create_app(await unreachable_temporal(), links=links)
    real = "bkash-INV-1001"
    query = "?paymentID=TR0011abcdefg1700000000000&status=success&signature=abcdefghij"
    wrong = [
        real,                                                         # created before tokens
        f"{real}/",                                                   # empty token
        f"{real}/{return_link_token(SECRET, 'bkash-INV-1002')}",      # another payment's token
        f"{real}/{return_link_token(OTHER_SECRET, real)}",            # another secret's
        f"{real}/{links.token(real)[:-1]}",                           # truncated
        f"{real}/{links.token(real)}x",                               # too long
        f"{real}/{links.token(real).swapcase()}",
        f"monetix-P-1/{return_link_token(SECRET, 'monetix-P-1')}",    # a foreign workflow
        f"bkash-{'x' * 300}/{return_link_token(SECRET, 'bkash-' + 'x' * 300)}",
        "", "x", "/", "%00", quote("bkash-ক্রেতা", safe="") + "/!!!!!!!!!!!!!!!!!!!!!!",
    ]
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=30) as http:
        answers = [await http.get(f"{base}/bkash/{route}/{path}{query}") for path in wrong]
        # The control: the real link does reach Temporal, which cannot answer (503). So every
        # refusal above was given without a call to Temporal (no describe, no query, no update).
        control = await http.get(f"{base}/bkash/{route}/{real}/{links.token(real)}{query}")
    assert {(a.status_code, a.text) for a in answers} == {(404, answers[0].text)}
    assert "not valid" in answers[0].text
    assert control.status_code == 503


async def test_an_outsider_cannot_tell_a_real_invoice_from_an_unknown_one(stack):
    req, url = await pay(stack)
    query = {"paymentID": url.payment_id, "status": "cancel"}
    async with httpx.AsyncClient(timeout=30) as http:
        seen = [await http.get(f"{stack.endpoint_url}/bkash/{route}/{quote(wf, safe='')}",
                               params=query)
                for wf in (req.workflow_id, f"bkash-INV-never-{uuid.uuid4().hex[:6]}")
                for route in ("return", "result")]
    assert {(r.status_code, r.text) for r in seen} == {(404, seen[0].text)}
    # Nothing reached the payment: its customer still cancels it themselves.
    assert (await state(stack, req)).stage is BkashStage.AWAITING_APPROVAL
    await stack.customer.cancel(url.bkash_url)
    assert (await result(stack, req)).stage is BkashStage.CANCELLED


async def test_the_result_page_needs_the_token_and_shows_amount_and_outcome_escaped(stack):
    req, url = await pay(stack, invoice=f"INV-\"q'-{uuid.uuid4().hex[:6]}", amount_poisha=123456)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    async with httpx.AsyncClient(timeout=30) as http:
        shown = await http.get(result_url(stack, req.workflow_id))
        bare = await http.get(
            f"{stack.endpoint_url}/bkash/result/{quote(req.workflow_id, safe='')}")
    assert shown.status_code == 200
    assert "data-outcome='authorized'" in shown.text and "1234.56 BDT" in shown.text
    assert "&quot;q&#x27;" in shown.text and "\"q'" not in shown.text
    assert bare.status_code == 404 and "1234.56" not in bare.text


async def test_the_merchants_result_page_gets_amount_and_outcome(
        dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    async with running_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http,
                             shared_activities,
                             result_page_url="https://shop.example/thanks") as stack:
        req, url = await pay(stack, amount_poisha=75000)
        await stack.sandbox.add_fault("page", "no_redirect", match={"paymentID": url.payment_id})
        await stack.customer.approve(url.bkash_url)
        back = await stack.customer.http.get(await bkash_redirect(stack, url.payment_id))
        assert back.status_code == 303
        target = urlsplit(back.headers["location"])
        assert target.netloc == "shop.example"
        assert {k: v[0] for k, v in parse_qs(target.query).items()} == {
            "payment": req.workflow_id, "outcome": "authorized", "amount": "750.00",
            "paymentID": url.payment_id}
        await stack.client.get_workflow_handle(req.workflow_id).cancel()
        assert (await result(stack, req)).stage is BkashStage.VOIDED


async def test_a_link_of_the_previous_secret_works_until_the_rotation_ends():
    now = [datetime(2026, 5, 1, 12, tzinfo=UTC)]
    until = datetime(2026, 5, 1, 13, tzinfo=UTC)
    links = ResultLinks(SECRET, previous=OTHER_SECRET, previous_until=until, clock=lambda: now[0])
    wf = "bkash-INV-rotated"
    old = return_link_token(OTHER_SECRET, wf)
    assert links.workflow_id(f"{wf}/{old}") == wf
    assert links.workflow_id(f"{wf}/{links.token(wf)}") == wf
    app = create_app(await unreachable_temporal(), links=links)
    async with serve_asgi(app) as base, httpx.AsyncClient(timeout=30) as http:
        before = await http.get(f"{base}/bkash/result/{wf}/{old}")
        now[0] = until
        after = await http.get(f"{base}/bkash/result/{wf}/{old}")
        current = await http.get(f"{base}/bkash/result/{wf}/{links.token(wf)}")
    assert before.status_code == 503  # accepted: it went on to ask Temporal
    assert after.status_code == 404 and current.status_code == 503
    with pytest.raises(ValueError):
        ResultLinks(SECRET, previous=OTHER_SECRET)  # a previous secret that would never retire


WORKER = {"BKASH_BASE_URL": "https://tokenized.sandbox.bka.sh/v1.2.0-beta", "BKASH_APP_KEY": "k",
          "BKASH_APP_SECRET": "s", "BKASH_USERNAME": "u", "BKASH_PASSWORD": "p",
          "PAYMENTS_CALLBACK_BASE_URL": "https://shop.example"}


def test_the_link_secret_is_required_by_worker_and_endpoint_and_never_echoed():
    for load, env in ((load_settings, WORKER), (load_endpoint_settings, {})):
        with pytest.raises(ConfigError, match="PAYMENTS_LINK_SECRET is not set"):
            load(env)
        with pytest.raises(ConfigError, match="at least 32 characters") as short:
            load({**env, "PAYMENTS_LINK_SECRET": "short-secret"})
        assert "short-secret" not in str(short.value)
        assert load({**env, "PAYMENTS_LINK_SECRET": LINK_SECRET}).link_secret.get_secret_value() \
            == LINK_SECRET
    assert LINK_SECRET not in repr(load_endpoint_settings({"PAYMENTS_LINK_SECRET": LINK_SECRET}))


def test_a_previous_link_secret_needs_its_end_as_an_instant():
    base = {"PAYMENTS_LINK_SECRET": LINK_SECRET}
    previous = "the-previous-link-secret-0123456789abcdef"
    settings = load_endpoint_settings({
        **base, "PAYMENTS_LINK_SECRET_PREVIOUS": previous,
        "PAYMENTS_LINK_SECRET_PREVIOUS_UNTIL": "2026-05-01T12:00:00+06:00"})
    assert settings.link_secret_previous_until == datetime(2026, 5, 1, 6, tzinfo=UTC)
    links = ResultLinks.from_settings(settings)
    assert links.workflow_id(f"bkash-x/{return_link_token(previous.encode(), 'bkash-x')}") is None
    for extra, problem in (({"PAYMENTS_LINK_SECRET_PREVIOUS": previous}, "go together"),
                           ({"PAYMENTS_LINK_SECRET_PREVIOUS_UNTIL": "2026-05-01T12:00:00Z"},
                            "go together"),
                           ({"PAYMENTS_LINK_SECRET_PREVIOUS": previous,
                             "PAYMENTS_LINK_SECRET_PREVIOUS_UNTIL": "2026-05-01T12:00:00"},
                            "with a time zone"),
                           ({"PAYMENTS_BKASH_REDIRECT_SIGNATURE": "lenient"}, "advisory")):
        with pytest.raises(ConfigError, match=problem) as info:
            load_endpoint_settings({**base, **extra})
        assert previous not in str(info.value)


def create_without_a_token(acts: list) -> list:
    """The worker's activities, with create giving bKash the callbackURL of the code before result
    links had tokens: what payments in flight at the upgrade were given."""
    real = next(a for a in acts if getattr(a, "__name__", "") == "create_payment")
    client = real.__self__._client

    @activity.defn(name=BkashActivity.CREATE_PAYMENT)
    async def create_payment(inp: CreatePaymentInput) -> CreatedPaymentInfo:
        created = await client.create_payment(
            amount_poisha=inp.amount_poisha, invoice_number=inp.invoice_number,
            payer_reference=inp.payer_reference, callback_url=inp.callback_url)
        signature = parse_qs(urlsplit(created.success_callback_url or "").query).get("signature")
        return CreatedPaymentInfo(payment_id=created.payment_id, bkash_url=created.bkash_url,
                                  redirect_signature=signature[-1] if signature else None)

    return [create_payment if a is real else a for a in acts]


async def test_a_payment_created_before_links_had_tokens_is_authorized_when_its_window_ends(
        dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    async with running_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http,
                             create_without_a_token(shared_activities)) as stack:
        req, url = await pay(stack, approval_window=timedelta(seconds=3))
        journey = await stack.customer.approve(url.bkash_url)
        # Refused like any link without a token (telling it from a guess would need Temporal),
        # with a page that says what happens next.
        assert journey.final_status_code == 404 and "being confirmed" in journey.final_text
        assert (await state(stack, req)).stage is BkashStage.AWAITING_APPROVAL
        # The approval window's one execute authorizes the approved payment.
        await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
        await report_service_delivered(stack.client, req.invoice_number)
        assert (await result(stack, req)).stage is BkashStage.CAPTURED
        assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE",
                                                                                 "CAPTURE"]
        # Its result link with a token works like any other payment's.
        async with httpx.AsyncClient(timeout=30) as browser:
            shown = await browser.get(result_url(stack, req.workflow_id))
        assert "data-outcome='authorized'" in shown.text
        assert return_url(stack, req.workflow_id).endswith(link_token(stack, req.workflow_id))
