"""Monetix signatures are compared in constant time (hmac.compare_digest), never with ``==``, whose
early exit on the first differing byte lets a forger learn the right signature byte by byte from
response times. Every place that checks a Monetix signature (the endpoint's callbacks, the Gate
client's status answers, the sandbox's requests) goes through providers.monetix_signing.verify, and
verify compares each expected signature with the received one through compare_digest."""

from __future__ import annotations

import hmac
import secrets

import httpx
import pytest
from pydantic import SecretStr

from providers import monetix_signing
from providers.monetix import MonetixGateClient, MonetixGateConfig
from providers.monetix_signing import sign, signing_string, verify

SECRET = "s3cr3t-monetix-key"
PROJECT = 1234
CALLBACK = {"project_id": PROJECT,
            "payment": {"id": "mx-42", "type": "purchase", "status": "success",
                        "sum": {"amount": 100000, "currency": "BDT"}},
            "operation": {"id": 7, "type": "sale", "status": "success", "code": "0"}}
# Byte and natural order differ from 11 array items on ("10" sorts before "2" byte-wise).
ELEVEN = {**CALLBACK, "items": [f"i{n}" for n in range(11)]}


@pytest.fixture
def compared(monkeypatch) -> list[tuple[bytes, bytes]]:
    """Every (expected, received) pair compare_digest is asked about, however it is reached."""
    real = hmac.compare_digest
    calls: list[tuple[bytes, bytes]] = []

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    monkeypatch.setattr(secrets, "compare_digest", recording)
    for name, value in vars(monetix_signing).items():
        if value is real:  # `from hmac import compare_digest`
            monkeypatch.setattr(monetix_signing, name, recording)
    return calls


def expected(data: dict, order: str = "byte") -> bytes:
    return sign(data, SECRET, order=order).encode("ascii")


def test_a_valid_signature_is_accepted_by_compare_digest(compared):
    signature = sign(CALLBACK, SECRET)
    assert verify({**CALLBACK, "signature": signature}, SECRET)
    assert compared == [(expected(CALLBACK), signature.encode("ascii"))]


def test_a_forged_signature_is_refused_by_compare_digest_not_by_equality(compared):
    right = sign(CALLBACK, SECRET)
    # Same length and shape (Base64 of 64 bytes), right but for one of the last characters: what a
    # timing attack produces on its way. (A signature of another shape is refused before any HMAC.)
    forged = right[:-4] + ("A" if right[-4] != "A" else "B") + right[-3:]
    assert not verify({**CALLBACK, "signature": forged}, SECRET)
    assert compared == [(expected(CALLBACK), forged.encode("ascii"))]


def test_every_order_is_compared_in_constant_time_whichever_matches(compared):
    orders = ("byte", "natural", "line")  # Python; PHP/JS; Go/Java (whole lines), §2.3
    assert len({signing_string(ELEVEN, order=order) for order in orders}) == 3
    for order in orders:
        compared.clear()
        signature = sign(ELEVEN, SECRET, order=order)
        assert verify({**ELEVEN, "signature": signature}, SECRET)
        # Every comparison runs every time, so the time taken does not tell which order matched.
        assert compared == [(expected(ELEVEN, o), signature.encode("ascii")) for o in orders]


def test_every_monetix_signature_check_goes_through_the_one_verify():
    import endpoint.monetix_callbacks
    import providers.monetix.gate
    import sandbox.monetix.state

    for module in (providers.monetix.gate, sandbox.monetix.state):
        assert module.verify is monetix_signing.verify, module.__name__
    # The endpoint wants the reason of a refusal (to count it): authenticate, which verify wraps.
    assert endpoint.monetix_callbacks.authenticate is monetix_signing.authenticate
    assert not hasattr(endpoint.monetix_callbacks, "verify")


async def test_the_endpoint_checks_a_callback_signature_with_compare_digest(compared):
    from endpoint.app import create_app

    # A refused signature never reaches Temporal: no client is needed to answer it.
    app = create_app(client=None, monetix_projects={PROJECT: SECRET})  # type: ignore[arg-type]
    forged = sign(CALLBACK, "not-the-key")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://endpoint.test") as http:
        response = await http.post("/monetix/callback", json={**CALLBACK, "signature": forged})
    assert response.status_code == 400
    assert compared == [(expected(CALLBACK), forged.encode("ascii"))]


async def test_the_gate_client_checks_a_status_answer_signature_with_compare_digest(compared):
    answer = {"project_id": PROJECT,
              "payment": {"id": "mx-42", "type": "purchase", "status": "success",
                          "sum": {"amount": 100000, "currency": "BDT"}},
              "operations": [{"id": 7, "type": "sale", "status": "success", "code": "0"}]}
    signed = {**answer, "signature": sign(answer, SECRET)}
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda req: httpx.Response(200, json=signed)))
    client = MonetixGateClient(http, MonetixGateConfig(project_id=PROJECT, secret_key=SecretStr(SECRET),
                                                       base_url="https://gate.test"))
    status = await client.status("mx-42")
    assert status.status == "success" and status.signature_verified
    assert compared == [(expected(answer), signed["signature"].encode("ascii"))]
