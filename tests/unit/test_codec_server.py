"""codec_server over real HTTP on loopback: Temporal's /encode and /decode, bearer or path token,
CORS only for the Web UI's origin, bounded bodies."""

from __future__ import annotations

import secrets

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from codec_server import create_app
from embedded import serve_asgi
from merchant_client.encryption import AesGcmCodec, EncryptionKeys, new_key_line

KEYS = EncryptionKeys.parse(new_key_line("k1"), "X")
TOKEN = secrets.token_urlsafe(32)
UI = "http://localhost:8233"


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


async def sealed(text: str) -> Payload:
    [p] = await AesGcmCodec(KEYS).encode([Payload(metadata={"encoding": b"json/plain"},
                                                  data=text.encode())])
    return p


async def test_decode_with_the_bearer_token_gives_the_plain_payload():
    async with serve_asgi(create_app(KEYS, TOKEN, allowed_origins=[UI])) as url:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{url}/decode", content=body(await sealed('{"email":"a@b.c"}')),
                                headers={"Authorization": f"Bearer {TOKEN}",
                                         "Content-Type": "application/json"})
            assert r.status_code == 200
            out = json_format.Parse(r.content, Payloads())
            assert out.payloads[0].data == b'{"email":"a@b.c"}'
            # encode → decode round trip through the server
            r = await http.post(f"{url}/encode", content=body(out.payloads[0]),
                                headers={"Authorization": f"Bearer {TOKEN}"})
            enc = json_format.Parse(r.content, Payloads()).payloads[0]
            assert enc.metadata["encoding"] == b"binary/encrypted" and b"a@b.c" not in enc.data


async def test_without_or_with_a_wrong_token_nothing_is_decoded():
    async with serve_asgi(create_app(KEYS, TOKEN, allowed_origins=[UI])) as url:
        async with httpx.AsyncClient() as http:
            payload = body(await sealed('{"email":"a@b.c"}'))
            for headers, path in (({}, "/decode"), ({"Authorization": "Bearer nope"}, "/decode"),
                                  ({"Authorization": TOKEN}, "/decode"), ({}, "/t/nope/decode")):
                r = await http.post(url + path, content=payload, headers=headers)
                assert r.status_code == 401, (headers, path)
                assert b"a@b.c" not in r.content


async def test_the_web_ui_path_token_and_cors_for_its_origin_only():
    async with serve_asgi(create_app(KEYS, TOKEN, allowed_origins=[UI])) as url:
        async with httpx.AsyncClient() as http:
            pre = await http.options(f"{url}/t/{TOKEN}/decode", headers={
                "Origin": UI, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace"})
            assert pre.status_code == 204
            assert pre.headers["access-control-allow-origin"] == UI
            assert "x-namespace" in pre.headers["access-control-allow-headers"].lower()
            r = await http.post(f"{url}/t/{TOKEN}/decode", content=body(await sealed("x")),
                                headers={"Origin": UI, "X-Namespace": "default"})
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == UI
            evil = await http.options(f"{url}/t/{TOKEN}/decode", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
            assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers


async def test_malformed_and_oversized_bodies_are_refused():
    async with serve_asgi(create_app(KEYS, TOKEN, allowed_origins=[UI],
                                     max_body_bytes=1024)) as url:
        async with httpx.AsyncClient() as http:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert (await http.post(f"{url}/decode", content=b"{not json", headers=auth)
                    ).status_code == 400
            assert (await http.post(f"{url}/decode", content=b"x" * 5000, headers=auth)
                    ).status_code == 413


async def test_a_payload_of_an_unknown_key_is_answered_with_its_key_id():
    other = EncryptionKeys.parse(new_key_line("k9"), "X")
    [p] = await AesGcmCodec(other).encode([Payload(metadata={"encoding": b"json/plain"},
                                                   data=b"x")])
    async with serve_asgi(create_app(KEYS, TOKEN, allowed_origins=[UI])) as url:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{url}/decode", content=body(p),
                                headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 422 and "k9" in r.text
