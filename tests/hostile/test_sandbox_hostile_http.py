"""Both provider sandboxes, fed hostile HTTP (malformed JSON, wrong types, huge and unicode values,
missing fields, random paths, methods and query strings, signed bodies with absurd values), answer
with a clear 4xx or their provider's own error envelope: never a 500.

Each test runs a fresh sandbox in-process (httpx.ASGITransport, application errors surfaced as 500
instead of raised) so fuzzed faults and payments never leak into the e2e tests' shared sandboxes.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.monetix_signing import sign, sign_request
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from tests.hostile.strategies import big_ints, hostile_bodies, huge_text, json_like, nasty_text

# No token budget: hypothesis asks for tokens far more often than bKash's two an hour (§3.2).
BK = BkashSandboxConfig(token_calls_per_hour=0)
MX = MonetixSandboxConfig(callback_retry_delays=[], other_projects={4321: "another-merchants-key"})
API = f"/{BK.api_version}/tokenized/checkout"
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])

# JSON values a hostile client puts where a field is expected (every one of them serialisable).
json_junk = st.one_of(st.none(), st.booleans(), big_ints, st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=20), nasty_text.filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF
                                                                                 for c in t)),
                      huge_text, json_like(6))
segments = st.sampled_from(["", "admin", "payments", "faults", "checkout", "v1.2.0-beta", "tokenized",
                            "create", "execute", "payment", "status", "v2", "wallet", "bkash", "sale",
                            "sandbox", "customer", "pay", "..", "%00", "%FF", "ক্রেতা", "a b", "x" * 300,
                            "1234", "-1", "complete", "ledger", "stats", "reset"])
paths = st.lists(segments, min_size=0, max_size=6).map(lambda parts: "/" + "/".join(parts))
# httpx refuses URLs over 64 KiB itself, so "huge" query values stay below that in total.
long_text = st.integers(min_value=1_000, max_value=9_000).map(lambda n: "x" * n)
queries = st.dictionaries(st.text(max_size=10), st.text(max_size=20) | long_text, max_size=4)


def _assert_not_a_crash(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500 or response.status_code in (502, 503) and "Service Unavailable" in \
        response.text, f"{what} -> HTTP {response.status_code}: {response.text[:300]}"


def _asgi_client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://sandbox.test", timeout=10)


# ------------------------------------------------------------------------------------- bKash sandbox

class BkashFixture:
    def __init__(self, app, http: httpx.AsyncClient) -> None:
        self.app, self.http = app, http
        self.token = ""
        self.payment_id = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": self.token, "x-app-key": BK.app_key}


@pytest_asyncio.fixture
async def bkash():
    app = create_bkash_sandbox(BK)
    async with _asgi_client(app) as http:
        fx = BkashFixture(app, http)
        grant = await http.post(f"{API}/token/grant", json={"app_key": BK.app_key, "app_secret": BK.app_secret},
                                headers={"username": BK.username, "password": BK.password})
        fx.token = grant.json()["id_token"]
        created = await http.post(f"{API}/create", headers=fx.auth, json={
            "mode": "0011", "payerReference": "01712345678", "callbackURL": "https://shop.example/cb",
            "amount": "500.00", "currency": "BDT", "intent": "authorization", "merchantInvoiceNumber": "INV-1"})
        fx.payment_id = created.json()["paymentID"]
        yield fx


BKASH_OPERATIONS = ["/token/grant", "/token/refresh", "/create", "/execute", "/payment/status",
                    "/payment/confirm/capture", "/payment/confirm/void", "/payment/confirm/capture/void",
                    "/general/searchTransaction", "/payment/refund"]
BKASH_FIELDS = ["app_key", "app_secret", "refresh_token", "mode", "payerReference", "callbackURL", "amount",
                "currency", "intent", "merchantInvoiceNumber", "paymentID", "trxID", "sku", "reason"]


@settings(max_examples=150, deadline=None)
@given(operation=st.sampled_from(BKASH_OPERATIONS), body=hostile_bodies,
       authorized=st.booleans(), data=st.data())
async def test_bkash_api_answers_hostile_bodies_without_a_500(bkash, operation, body, authorized, data):
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
    headers = bkash.auth if authorized else {"authorization": data.draw(header_text),
                                             "x-app-key": data.draw(header_text)}
    if operation.startswith("/token/"):
        headers = {"username": BK.username, "password": BK.password}
    response = await bkash.http.post(API + operation, content=body, headers=headers)
    _assert_not_a_crash(response, f"POST {operation} {body[:80]!r}")


@settings(max_examples=250, deadline=None)
@given(operation=st.sampled_from(BKASH_OPERATIONS), data=st.data(),
       fields=st.dictionaries(st.sampled_from(BKASH_FIELDS), json_junk, max_size=8))
async def test_bkash_api_answers_wrong_types_and_huge_values_without_a_500(bkash, operation, data, fields):
    # Plausible requests with one or more fields replaced by junk: the real payment's id half the time,
    # valid credentials for the token calls, a valid create otherwise.
    body = dict(fields)
    if data.draw(st.booleans(), label="own payment"):
        body.setdefault("paymentID", bkash.payment_id)
    if operation.startswith("/token/"):
        body.setdefault("app_key", BK.app_key)
        body.setdefault("app_secret", BK.app_secret)
        headers = {"username": BK.username, "password": BK.password}
    else:
        headers = bkash.auth
    if operation == "/create":
        body = {"mode": "0011", "payerReference": "0171", "callbackURL": "https://a.example/cb",
                "amount": "10.00", "currency": "BDT", "intent": "authorization",
                "merchantInvoiceNumber": "INV-h", **fields}
    response = await bkash.http.post(API + operation, content=json.dumps(body), headers=headers)
    _assert_not_a_crash(response, f"POST {operation} {body!r:.200}")
    if response.status_code == 200:
        answer = response.json()
        assert "statusCode" in answer or "errorCode" in answer, answer


@settings(max_examples=150, deadline=None)
@given(method=METHODS, path=paths, query=queries, body=hostile_bodies)
async def test_bkash_sandbox_answers_random_paths_and_methods_without_a_500(bkash, method, path, query, body):
    response = await bkash.http.request(method, path, params=query,
                                        content=body if method not in ("GET", "HEAD") else None)
    _assert_not_a_crash(response, f"{method} {path}")


@settings(max_examples=120, deadline=None)
@given(step=st.sampled_from(["wallet", "otp", "pin", "cancel"]), form=st.binary(max_size=100) | st.dictionaries(
    st.sampled_from(["wallet", "otp", "pin", "close"]), st.text(max_size=15) | huge_text, max_size=3).map(
    lambda f: "&".join(f"{quote(k)}={quote(v)}" for k, v in f.items()).encode()),
       own=st.booleans(), other=st.text(max_size=30))
async def test_bkash_hosted_page_answers_hostile_forms_without_a_500(bkash, step, form, own, other):
    payment_id = bkash.payment_id if own else other
    response = await bkash.http.post(f"/checkout/{quote(payment_id, safe='')}/{step}", content=form,
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    _assert_not_a_crash(response, f"page {step}")
    landing = await bkash.http.get("/checkout/", params={"paymentId": payment_id, "hash": other})
    _assert_not_a_crash(landing, "page landing")


@settings(max_examples=80, deadline=None)
@given(body=hostile_bodies | st.dictionaries(st.sampled_from(["operation", "kind", "times", "match", "status",
                                                              "code", "commit", "delay_seconds"]),
                                             json_junk, max_size=6).map(lambda d: json.dumps(d).encode()))
async def test_bkash_admin_refuses_hostile_faults_with_422(bkash, body):
    response = await bkash.http.post("/admin/faults", content=body)
    _assert_not_a_crash(response, f"POST /admin/faults {body[:80]!r}")
    bkash.app.state.sandbox.faults.clear()


async def test_bkash_token_refresh_with_a_non_string_refresh_token_is_a_bkash_error(bkash):
    for junk in ([1], {"a": 1}, 5, None, True):
        response = await bkash.http.post(f"{API}/token/refresh", headers={"username": BK.username,
                                                                         "password": BK.password},
                                         json={"app_key": BK.app_key, "app_secret": BK.app_secret,
                                               "refresh_token": junk})
        assert response.status_code == 200 and response.json()["statusCode"] == "2079", response.text


async def test_bkash_api_refuses_deeply_nested_json_as_a_bad_body(bkash):
    response = await bkash.http.post(f"{API}/execute", content=b"[" * 50_000, headers=bkash.auth)
    assert response.status_code == 200 and response.json()["statusCode"] == "2025"


async def test_bkash_admin_refuses_a_body_that_is_not_json_with_422(bkash):
    for body in (b"not json", b"[" * 50_000, b"\xff"):
        response = await bkash.http.post("/admin/faults", content=body)
        assert response.status_code == 422 and response.json()["error"] == "invalid fault"


# ----------------------------------------------------------------------------------- Monetix sandbox

class MonetixFixture:
    def __init__(self, app, http: httpx.AsyncClient) -> None:
        self.app, self.http = app, http
        self.payment_id = "mx-hostile-1"


@pytest_asyncio.fixture
async def monetix():
    # Callbacks go to a stand-in merchant that answers 200 at once.
    merchant = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    app = create_monetix_sandbox(MX, http=merchant)
    async with _asgi_client(app) as http:
        fx = MonetixFixture(app, http)
        sale = sign_request({"general": {"project_id": MX.project_id, "payment_id": fx.payment_id,
                                         "merchant_callback_url": "http://merchant.test/monetix/callback"},
                             "customer": {"id": "c", "ip_address": "203.0.113.7", "first_name": "R",
                                          "last_name": "U", "email": "r@example.com"},
                             "payment": {"amount": 100000, "currency": "BDT"}}, MX.secret_key)
        assert (await http.post(MX.sale_path, json=sale)).status_code == 200
        yield fx
        app.state.sandbox.outbox.reset()
    await merchant.aclose()


GATE_PATHS = [MX.sale_path, "/v2/payment/wallet/nagad/sale", "/v2/payment/clarification", "/v2/payment/status"]
project_ids = st.one_of(st.just(MX.project_id), st.just(4321), st.just(str(MX.project_id)), json_junk,
                        st.sampled_from(["²", "1_234", " 1234", "١٢٣٤", "9" * 5000, "+1234", "0x4d2"]))


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(GATE_PATHS), body=hostile_bodies)
async def test_gate_answers_unsigned_hostile_bodies_with_400(monetix, path, body):
    response = await monetix.http.post(path, content=body)
    _assert_not_a_crash(response, f"POST {path} {body[:80]!r}")
    assert response.status_code == 400 and response.json()["status"] == "error"


@settings(max_examples=120, deadline=None)
@given(path=st.sampled_from(GATE_PATHS), project=project_ids, signature=st.text(max_size=100) | json_junk)
async def test_gate_answers_hostile_project_ids_and_signatures_with_400(monetix, path, project, signature):
    body = {"general": {"project_id": project, "payment_id": monetix.payment_id, "signature": signature}}
    response = await monetix.http.post(path, content=json.dumps(body))
    _assert_not_a_crash(response, f"POST {path} project_id={project!r:.60}")
    assert response.status_code == 400


@settings(max_examples=250, deadline=None)
@given(path=st.sampled_from(GATE_PATHS), data=st.data(),
       general=st.fixed_dictionaries({}, optional={"payment_id": json_junk, "merchant_callback_url": json_junk}),
       sections=st.dictionaries(st.sampled_from(["customer", "payment", "account", "additional_data",
                                                 "callback", "general2"]),
                                st.dictionaries(st.sampled_from(["id", "amount", "currency", "number",
                                                                 "transaction_id", "delay", "email",
                                                                 "ip_address", "first_name", "description"]),
                                                json_junk, max_size=5) | json_junk, max_size=5))
async def test_gate_answers_signed_bodies_with_absurd_values_without_a_500(monetix, path, data, general,
                                                                             sections):
    # Signed with the project's key, so every business rule of the sandbox is reached.
    if data.draw(st.booleans(), label="own payment"):
        general.setdefault("payment_id", monetix.payment_id)
    body = {"general": {"project_id": MX.project_id, **general}, **sections}
    signed = sign_request(body, MX.secret_key)
    response = await monetix.http.post(path, content=json.dumps(signed))
    _assert_not_a_crash(response, f"POST {path} {signed!r:.300}")
    answer = response.json()
    assert answer.get("status") in ("success", "error") or "payment" in answer, answer
    monetix.app.state.sandbox.outbox.reset()


@settings(max_examples=120, deadline=None)
@given(body=hostile_bodies | st.dictionaries(st.sampled_from(["payment_id", "project_id", "amount", "wallet"]),
                                             json_junk | project_ids, max_size=4).map(
    lambda d: json.dumps(d).encode()), own=st.booleans())
async def test_customer_pay_answers_hostile_bodies_with_4xx(monetix, body, own):
    if own:
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                parsed["payment_id"] = monetix.payment_id
                body = json.dumps(parsed).encode()
        except (ValueError, RecursionError):
            pass
    response = await monetix.http.post("/sandbox/customer/pay", content=body)
    _assert_not_a_crash(response, f"customer pay {body[:80]!r}")


PAGE_FIELDS = ["project_id", "payment_id", "customer_id", "customer_first_name", "customer_last_name",
               "customer_email", "payment_currency", "payment_amount", "customer_account_number",
               "payment_description", "merchant_callback_url", "frame_mode", "signature"]


@settings(max_examples=200, deadline=None)
@given(params=st.dictionaries(st.sampled_from(PAGE_FIELDS), st.text(max_size=20) | long_text | st.sampled_from(
    ["1234", "BDT", "100000", "²", "١٠٠٠٠٠", "9" * 5000, "0", "-1000", "01712345678\n"]), max_size=13),
       signed=st.booleans())
async def test_payment_page_answers_hostile_links_without_a_500(monetix, params, signed):
    if signed:
        params = {**params, "project_id": str(MX.project_id)}
        params["signature"] = sign({k: v for k, v in params.items() if k != "signature"}, MX.secret_key)
    response = await monetix.http.get("/payment", params=params)
    _assert_not_a_crash(response, f"GET /payment {params!r:.200}")
    assert response.status_code in (200, 400)
    monetix.app.state.sandbox.outbox.reset()


@settings(max_examples=150, deadline=None)
@given(project=st.sampled_from(["1234", "4321", "²", "abc", "9" * 5000, "-1", "%20"]),
       payment=st.sampled_from(["mx-hostile-1", "nope", "%00", "ক্রেতা"]),
       body=hostile_bodies | st.dictionaries(st.sampled_from(["outcome", "amount", "code"]),
                                             json_junk | st.sampled_from(["success", "decline"]), max_size=3)
       .map(lambda d: json.dumps(d).encode()),
       as_form=st.booleans())
async def test_payment_page_completion_answers_hostile_input_without_a_500(monetix, project, payment, body,
                                                                             as_form):
    headers = {"content-type": "application/x-www-form-urlencoded" if as_form else "application/json"}
    response = await monetix.http.post(f"/payment/{project}/{payment}/complete", content=body, headers=headers)
    _assert_not_a_crash(response, f"complete {project}/{payment} {body[:80]!r}")


async def test_payment_page_form_submission_works_without_python_multipart(monetix):
    # The page's own HTML form posts urlencoded; the project does not ship python-multipart.
    params = {"project_id": str(MX.project_id), "payment_id": "mx-page-form", "customer_id": "c",
              "customer_first_name": "R", "customer_last_name": "U", "customer_email": "r@example.com",
              "payment_currency": "BDT", "payment_amount": "50000"}
    params["signature"] = sign(params, MX.secret_key)
    assert (await monetix.http.get("/payment", params=params)).status_code == 200
    response = await monetix.http.post(f"/payment/{MX.project_id}/mx-page-form/complete",
                                       data={"outcome": "success", "amount": "", "transaction_id": "X"})
    assert response.status_code == 200 and "success" in response.text


@settings(max_examples=150, deadline=None)
@given(method=METHODS, path=paths, query=queries, body=hostile_bodies)
async def test_monetix_sandbox_answers_random_paths_and_methods_without_a_500(monetix, method, path, query,
                                                                                body):
    response = await monetix.http.request(method, path, params=query,
                                          content=body if method not in ("GET", "HEAD") else None)
    _assert_not_a_crash(response, f"{method} {path}")
    monetix.app.state.sandbox.faults.clear()


@pytest.mark.parametrize("project", ["²", "9" * 5000, "١٢٣٤"])
async def test_monetix_admin_ledger_with_a_strange_project_id_is_not_a_500(monetix, project):
    response = await monetix.http.get("/admin/ledger", params={"project_id": project})
    assert response.status_code == 200 and response.json() == []
