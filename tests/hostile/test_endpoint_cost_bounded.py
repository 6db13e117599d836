"""What a request can cost the merchant endpoint is bounded by its size (issue 9 §1, §3): one hostile
test per class of input, asserting on the answer and on the work done — the signing string's size,
the leaves flattened, the HMACs computed (providers.monetix_signing.Meter), the request's peak memory
(tracemalloc), the bytes the endpoint read — never on wall time. No Temporal: every request here is
refused before the endpoint would reach it, and the one that verifies is checked by ``examine``.

The shapes are the ones found from outside: a 50 KB callback with one long key above a 5,000-item
array (845 MB, 7.5 s of CPU before), a flat array of zeros (2.5 s for 0.66 MB before)."""

from __future__ import annotations

import asyncio
import json
import threading
import tracemalloc

import httpx
import pytest

import endpoint.monetix_callbacks as callbacks
from endpoint.app import MAX_CALLBACK_BYTES, create_app
from endpoint.common import REFUSALS
from providers.monetix_signing import CALLBACK_BOUNDS, Meter, Refused, sign

PROJECT, SECRET = 1234, "endpoint-cost-secret"
# Plausible (Base64 of 64 bytes) but made with another key: an attacker's, so every check up to
# the HMAC comparison runs.
FORGED = sign({"x": 1}, "not-the-key")
# Peak memory a request may take per byte of body: the parsed JSON and the flattened lines are a
# small multiple of the body (Python objects), never the body's square. Measured: ≤ 14 (bench
# endpoint-cost); before the fix 273 for the zeros and 16,845 for the long key.
PEAK_PER_BODY_BYTE = 32


def callback(extra: dict, signature: str | None = FORGED) -> bytes:
    data = {"project_id": PROJECT, "payment": {"id": "mx-hostile", "status": "success"}, **extra}
    if signature is not None:
        data["signature"] = signature
    return json.dumps(data, separators=(",", ":")).encode()


def just_under_the_limit(make) -> bytes:
    """The largest ``callback(make(n))`` the endpoint reads."""
    n = 1
    while len(callback(make(n * 2))) <= MAX_CALLBACK_BYTES:
        n *= 2
    step = n
    while step > 1:
        step //= 2
        if len(callback(make(n + step))) <= MAX_CALLBACK_BYTES:
            n += step
    return callback(make(n))


def _nested(depth: int, leaf) -> dict:
    for level in range(depth):
        leaf = {f"{level:02d}" + "k" * (CALLBACK_BOUNDS.key_chars - 2): leaf}
    return leaf


def _nested_list(depth: int):
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


# class of input -> (body, the refusal's reason)
HOSTILE = {
    "one long key above a 5,000-item array (the 50 KB finding)":
        (callback({"K" * 39_000: [0] * 5_000}), Refused.KEY_TOO_LONG),
    "a flat array of zeros": (just_under_the_limit(lambda n: {"z": [0] * n}), Refused.TOO_MANY_LEAVES),
    "an object of many keys": (just_under_the_limit(lambda n: {f"k{i}": 0 for i in range(n)}),
                               Refused.TOO_MANY_LEAVES),
    "the longest keys allowed, nested as deep as allowed, above an array": (just_under_the_limit(
        lambda n: {"pad": "p" * 8000, **_nested(CALLBACK_BOUNDS.depth - 1, [0] * n)}),
        Refused.TOO_LARGE_TO_SIGN),
    "nesting deeper than a callback's": (callback({"a": _nested_list(40)}), Refused.TOO_DEEP),
    "a value longer than any callback's": (callback({"v": "x" * (CALLBACK_BOUNDS.value_chars + 1)}),
                                           Refused.VALUE_TOO_LONG),
    "no signature on a large body": (callback({"z": [0] * 20_000}, signature=None),
                                     Refused.MISSING_SIGNATURE),
    "a signature that cannot be one on a large body": (
        callback({"z": [0] * 20_000}, signature="A" * 88), Refused.MALFORMED_SIGNATURE),
    "the most leaves allowed, every order different (three HMACs)": (just_under_the_limit(
        lambda n: {"a": ["v" * n] * (CALLBACK_BOUNDS.leaves - 3)}), Refused.BAD_SIGNATURE),
}


@pytest.fixture
def app():
    # A refused callback never reaches Temporal: no client is needed to answer it.
    return create_app(None, monetix_projects={PROJECT: SECRET})  # type: ignore[arg-type]


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e",
                                 timeout=60) as client:
        yield client


@pytest.mark.parametrize("name", HOSTILE)
def test_each_hostile_shape_is_refused_with_bounded_work(name):
    raw, reason = HOSTILE[name]
    assert len(raw) <= MAX_CALLBACK_BYTES
    meter = Meter()
    with pytest.raises(callbacks.CallbackRefused) as refused:
        callbacks.examine(raw, {PROJECT: SECRET}, meter)
    assert (refused.value.status, refused.value.reason) == (400, reason)
    bounds = CALLBACK_BOUNDS.for_body(len(raw))
    # Never more lines, nor a longer signing string, than the bounds; a line is built only once
    # the bounds before it held, so at most one line's worth past the cap.
    assert meter.leaves <= bounds.leaves
    assert meter.line_chars <= bounds.signed_chars + bounds.depth * (bounds.key_chars + 1)
    assert meter.hashed_bytes <= 3 * bounds.signed_chars and meter.macs <= 3
    if reason in (Refused.MISSING_SIGNATURE, Refused.MALFORMED_SIGNATURE):
        assert meter == Meter()  # refused before any signing work
    elif reason != Refused.BAD_SIGNATURE:
        assert meter.macs == 0  # a bound refused it before any HMAC


@pytest.mark.parametrize("name", HOSTILE)
async def test_each_hostile_shape_costs_memory_linear_in_its_size(http, name):
    raw, reason = HOSTILE[name]
    tracemalloc.start()
    try:
        response = await http.post("/monetix/callback", content=raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 400 and reason in response.text
    assert peak <= PEAK_PER_BODY_BYTE * len(raw) + (1 << 20), f"{peak / len(raw):.0f} bytes per byte"


def test_the_largest_callback_that_verifies_costs_three_hmacs_over_twice_its_size_at_most():
    data = {"project_id": PROJECT, "payment": {"id": "mx-1", "status": "success"},
            "a": ["v" * 50] * (CALLBACK_BOUNDS.leaves - 3)}
    raw = json.dumps({**data, "signature": sign(data, SECRET, order="natural")}).encode()
    meter = Meter()
    verified = callbacks.examine(raw, {PROJECT: SECRET}, meter)
    assert verified.project_id == PROJECT and verified.status.payment_id == "mx-1"
    assert meter.leaves == CALLBACK_BOUNDS.leaves and meter.macs == 3
    assert meter.hashed_bytes <= 3 * (2 * len(raw) + 1024)


async def test_a_body_over_the_limit_is_refused_while_reading_and_the_rest_never_read(app):
    # 330,000 zeros (0.66 MB), sent without Content-Length in 16 KiB chunks: the read stops at 64 KiB.
    body = json.dumps({"project_id": PROJECT, "z": [0] * 330_000}).encode()
    chunks = [body[i:i + 16384] for i in range(0, len(body), 16384)]
    sent = 0

    async def receive():
        nonlocal sent
        sent += 1
        return {"type": "http.request", "body": chunks[sent - 1], "more_body": sent < len(chunks)}

    answer = await _call(app, "POST", "/monetix/callback", receive)
    assert answer["status"] == 413 and (b"connection", b"close") in answer["headers"]
    assert sent <= MAX_CALLBACK_BYTES // 16384 + 1 < len(chunks)


async def test_a_declared_length_over_the_limit_is_refused_before_any_read(app):
    for path, method in (("/monetix/callback", "POST"), ("/healthz", "POST"), ("/nowhere", "PUT")):
        reads = 0

        async def receive():
            nonlocal reads
            reads += 1
            return {"type": "http.request", "body": b"x", "more_body": True}

        answer = await _call(app, method, path, receive,
                             headers=[(b"content-length", str(660_000).encode())])
        assert answer["status"] == 413 and reads == 0, path


@pytest.mark.parametrize("declared,status", [(b"9" * 5000, 413), (b"\xb2", 400), (b"-1", 400),
                                             (b"1e3", 400), (b"", 400)])
async def test_a_content_length_that_is_no_length_is_a_4xx_not_a_500(app, declared, status):
    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    answer = await _call(app, "POST", "/monetix/callback", receive,
                         headers=[(b"content-length", declared)])
    assert answer["status"] == status


async def test_a_client_that_disconnects_mid_body_leaves_no_traceback(app, caplog):
    before = REFUSALS.totals.get("monetix callbacks", {}).get("client disconnected", 0)
    messages = iter([{"type": "http.request", "body": b'{"project_id": 12', "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    await _call(app, "POST", "/monetix/callback", receive)  # raises nothing
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]
    assert REFUSALS.totals["monetix callbacks"]["client disconnected"] == before + 1


async def test_a_body_that_stops_arriving_is_cut_off(app, monkeypatch):
    monkeypatch.setattr("endpoint.limits.BODY_READ_TIMEOUT", 0.05)
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"project_id": 1234', "more_body": True}
        await asyncio.Event().wait()  # the rest never comes

    answer = await _call(app, "POST", "/monetix/callback", receive)
    assert answer["status"] == 408 and (b"connection", b"close") in answer["headers"]


async def test_healthz_answers_while_a_worst_case_callback_is_being_verified(http, monkeypatch):
    """Ordering, not timing: the heavy callback's verification is held inside the worker thread
    until /healthz has answered. Had verification run on the event loop, /healthz could only
    answer after it (the hold ends after 30 s at the latest, and the order check fails)."""
    raw = HOSTILE["the most leaves allowed, every order different (three HMACs)"][0]
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []
    real = callbacks.examine

    def held(*args, **kwargs):
        entered.set()
        release.wait(30)
        order.append("verified")
        return real(*args, **kwargs)

    monkeypatch.setattr(callbacks, "examine", held)
    heavy = asyncio.create_task(http.post("/monetix/callback", content=raw))
    assert await asyncio.to_thread(entered.wait, 30)
    health = await http.get("/healthz")
    order.append("healthz answered")
    release.set()
    answer = await heavy
    assert health.status_code == 200 and answer.status_code == 400
    assert order == ["healthz answered", "verified"]


@pytest.mark.parametrize("request_kw,status,reason", [
    ({"url": "/bkash/return/bkash-INV-1", "params": {"paymentID": "T" * 3000, "status": "success"}},
     414, "query string too long"),
    ({"url": "/bkash/result/bkash-" + "x" * 5000}, 414, "path too long"),
    ({"url": "/bkash/return/bkash-INV-1", "headers": {f"x-h{i}": "v" for i in range(80)}},
     431, "headers too large"),
    ({"url": "/bkash/return/bkash-INV-1", "headers": {"cookie": "c" * 20_000}}, 431,
     "headers too large"),
    ({"url": "/healthz", "content": b"x" * 10}, 400, "body on a GET"),
])
async def test_oversized_requests_are_refused_on_every_route_before_it_runs(http, request_kw, status,
                                                                           reason):
    kind = "bkash returns" if request_kw["url"].startswith("/bkash/") else "requests"
    before = REFUSALS.totals.get(kind, {}).get(reason, 0)
    response = await http.request("GET", **request_kw)
    assert response.status_code == status
    assert REFUSALS.totals[kind][reason] == before + 1


async def _call(app, method: str, path: str, receive, headers=()) -> dict:
    """Call the ASGI app directly with ``receive``; what it sent back."""
    answer: dict = {}

    async def send(message):
        if message["type"] == "http.response.start":
            answer.update(status=message["status"], headers=list(message.get("headers", [])))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"e"), *headers], "client": ("1.2.3.4", 1),
             "server": ("e", 80)}
    await app(scope, receive, send)
    return answer
