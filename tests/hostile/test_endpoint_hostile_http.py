"""The merchant endpoint's three routes (and anything else a client tries) fed hostile HTTP: random
paths and workflow ids, malformed query strings, huge and unicode values, bodies that are not JSON,
signed bodies with absurd values. The answer is always a clear 4xx (or the documented redirect),
never a 500: the endpoint talks to a real Temporal dev server (``dev_env``), so routing is real.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from endpoint.app import MAX_CALLBACK_BYTES, create_app
from providers.monetix_signing import sign
from tests.conftest import MONETIX
from tests.hostile.strategies import big_ints, hostile_bodies, json_like, nasty_text

RETURN_STATUSES = st.sampled_from(["success", "failure", "cancel", "", "SUCCESS", "ok", "cancel\n", "succéss"])
# Query values as a browser or an attacker writes them; httpx itself refuses URLs over 64 KiB.
query_values = (st.text(max_size=40) | nasty_text | st.integers(100, 4_000).map(lambda n: "T" * n)
                | st.from_regex(r"TR0011[A-Za-z0-9]{7}[0-9]{13}", fullmatch=True))
workflow_ids = (st.text(max_size=40) | nasty_text | st.integers(900, 3_000).map(lambda n: "bkash-" + "x" * n)
                | st.sampled_from(["", "bkash-", "bkash-INV-1", "monetix-mx-1", "bkash-%00", "bkash-../x",
                                   "bkash-ক্রেতা", "bkash-\u202e", "a/b/c", "bkash-INV?x=1", "bkash-INV#x"]))
json_junk = st.one_of(st.none(), st.booleans(), big_ints, st.text(max_size=20), json_like(6),
                      st.integers(1_000, 3_000).map(lambda n: "9" * n))


def _ok(response: httpx.Response, what: str, allowed=(303, 400, 404, 405, 409, 413)) -> None:
    assert response.status_code in allowed, f"{what} -> HTTP {response.status_code}: {response.text[:300]}"


@pytest_asyncio.fixture
async def endpoint(dev_env):
    app = create_app(dev_env.client, monetix_projects={MONETIX.project_id: MONETIX.secret_key})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test", timeout=30) as http:
        yield http


@settings(max_examples=120, deadline=None)
@given(workflow_id=workflow_ids,
       query=st.fixed_dictionaries({}, optional={"paymentID": query_values, "status": RETURN_STATUSES,
                                                 "signature": query_values, "apiVersion": query_values,
                                                 "extra": query_values}))
async def test_bkash_return_answers_hostile_requests_with_a_4xx(endpoint, workflow_id, query):
    response = await endpoint.get(f"/bkash/return/{quote(workflow_id, safe='', errors='surrogatepass')}", params=query)
    # 200: the payment's own result page, rendered for a repeated or refused return of a real payment.
    # 414: a path or query string over 2 KiB (endpoint/limits.py), refused before the route runs.
    _ok(response, f"return {workflow_id!r:.60} {query!r:.200}",
        allowed=(200, 303, 400, 404, 405, 409, 413, 414))
    if response.status_code == 303:
        # Only a real payment's result page or bKash's page: never an attacker-chosen place.
        assert response.headers["location"].startswith(("/bkash/result/", "https://", "http://"))


@settings(max_examples=80, deadline=None)
@given(raw_query=st.text(max_size=200) | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
async def test_bkash_return_answers_a_raw_garbage_query_string_with_a_4xx(endpoint, raw_query):
    response = await endpoint.get("/bkash/return/bkash-INV-hostile?" + quote(raw_query, safe="=&%?+;"))
    _ok(response, f"raw query {raw_query!r:.100}")


@settings(max_examples=80, deadline=None)
@given(workflow_id=workflow_ids)
async def test_bkash_result_answers_unknown_or_foreign_ids_with_404(endpoint, workflow_id):
    response = await endpoint.get(f"/bkash/result/{quote(workflow_id, safe='', errors='surrogatepass')}")
    _ok(response, f"result {workflow_id!r:.60}", allowed=(200, 404))


@pytest.mark.parametrize("path", ["/bkash/return/", "/bkash/result/", "/bkash/result/%00",
                                  "/bkash/return/?paymentID=TR1&status=success",
                                  "/bkash/return/bkash-x?paymentID=" + "T" * 3000 + "&status=success",
                                  "/bkash/return/bkash-x?paymentID=TR1&status=success&signature=" + "s" * 3000,
                                  "/bkash/return/bkash-x?paymentID=TR%001&status=success",
                                  "/bkash/return/bkash-x?paymentID=TR1&status=success&signature=a%20b"])
async def test_empty_or_oversized_ids_are_4xx_not_500(endpoint, path):
    response = await endpoint.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)


@settings(max_examples=150, deadline=None)
@given(body=hostile_bodies)
async def test_monetix_callback_answers_hostile_bodies_with_400(endpoint, body):
    response = await endpoint.post("/monetix/callback", content=body)
    _ok(response, f"callback {body[:80]!r}", allowed=(400,))


@settings(max_examples=100, deadline=None)
@given(project=json_junk | st.sampled_from([str(MONETIX.project_id), f" {MONETIX.project_id}", "1_234", "²",
                                             4321, -MONETIX.project_id, MONETIX.project_id * 10**40]),
       signature=json_junk | st.text(max_size=120))
async def test_monetix_callback_with_a_hostile_project_or_signature_is_refused(endpoint, project, signature):
    body = {"project_id": project, "payment": {"id": "mx-1", "status": "success"}, "signature": signature}
    response = await endpoint.post("/monetix/callback", content=json.dumps(body))
    _ok(response, f"callback project={project!r:.60} signature={signature!r:.60}", allowed=(400,))


@settings(max_examples=150, deadline=None)
@given(payment=st.dictionaries(st.sampled_from(["id", "status", "sum", "type", "date"]), json_junk, max_size=5),
       operation=json_junk | st.dictionaries(st.sampled_from(["id", "type", "status", "code", "message",
                                                              "sum_initial", "provider"]), json_junk,
                                             max_size=6),
       extra=st.dictionaries(st.sampled_from(["operations", "display_data", "clarification_fields", "account",
                                              "errors", "customer"]), json_junk, max_size=4))
async def test_monetix_callback_signed_with_absurd_values_is_never_a_500(endpoint, payment, operation, extra):
    # A body only Monetix (or someone with the key) could send: past the signature check, every
    # reader of the callback meets the absurd values. No purchase exists for them: 400 or 404.
    body = {"project_id": MONETIX.project_id, "payment": payment, "operation": operation, **extra}
    body["signature"] = sign(body, MONETIX.secret_key)
    response = await endpoint.post("/monetix/callback", content=json.dumps(body))
    _ok(response, f"signed callback {body!r:.300}", allowed=(400, 404))


@pytest.mark.parametrize("operation_id", ["9" * 2000, "x" * 990])
async def test_signed_callback_whose_update_id_temporal_cannot_take_is_400(endpoint, operation_id):
    body = {"project_id": MONETIX.project_id, "payment": {"id": "mx-nobody", "status": "success"},
            "operation": {"id": operation_id, "type": "sale", "status": "success"}}
    body["signature"] = sign(body, MONETIX.secret_key)
    response = await endpoint.post("/monetix/callback", content=json.dumps(body))
    assert response.status_code in (400, 404), response.text


async def test_a_callback_body_over_the_size_limit_is_413(endpoint):
    body = json.dumps({"project_id": MONETIX.project_id, "pad": "x" * MAX_CALLBACK_BYTES})
    response = await endpoint.post("/monetix/callback", content=body)
    assert response.status_code == 413


@settings(max_examples=100, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
       path=st.lists(st.sampled_from(["bkash", "return", "result", "monetix", "callback", "healthz", "",
                                      "..", "%00", "ক", "x" * 200]), max_size=5).map(lambda p: "/" + "/".join(p)),
       body=hostile_bodies)
async def test_random_paths_and_methods_get_a_4xx(endpoint, method, path, body):
    response = await endpoint.request(method, path, content=body if method != "GET" else None)
    _ok(response, f"{method} {path}", allowed=(200, 303, 400, 404, 405, 409, 413))
    assert response.status_code != 200 or path in ("/healthz",) or path.startswith("/bkash/result/")
