"""Issue 12 §3: runs after the other e2e tests (file order) and reads every history they left on the
dev server as anyone with access to the namespace would — raw, without the codec: none of the test
customers' names, e-mails, IP addresses, account or wallet numbers or payer references appears,
nor does any secret; a provider failure whose message echoes the customer's account number is
ciphertext too. Through the codec server (as the stock `temporal` CLI and the Web UI read it) the
same histories decode to the full story. Search attributes, workflow ids and update ids (Temporal
stores them unencoded) carry no personal data, nor a hash of any.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

from codec_server import create_app as create_codec_server
from contracts.bkash import BkashOp
from contracts.monetix import MonetixOp
from embedded import serve_asgi
from merchant_client.encryption import load_keys
from sandbox.bkash.customer import DEFAULT_WALLET
from tests.support.bkash import pay, result
from merchant_client import start_gate_purchase
from tests.support.monetix import CUSTOMER, gate_request, purchase_result

TEMPORAL = Path(sys.executable).parent / "temporal"
ACCOUNT = "01712345678"  # the test customers' Monetix account number
PERSONAL = [CUSTOMER["first_name"], CUSTOMER["last_name"], CUSTOMER["email"],
            CUSTOMER["ip_address"], CUSTOMER["id"], ACCOUNT, DEFAULT_WALLET]


def _dicts(obj):
    """Every JSON object in a history's JSON, nested ones included."""
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _dicts(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _dicts(value)


def _is_payload(obj: dict) -> bool:
    return "data" in obj and "metadata" in obj and isinstance(obj["data"], str)


def _payload_bytes(obj) -> list[bytes]:
    """Every payload's data in a history as `temporal workflow show --output json` prints it."""
    return [base64.b64decode(d["data"]) for d in _dicts(obj) if _is_payload(d)]


# The starts' update ids (merchant_client.calls.start_update_id): the update's name and the amount,
# nothing else (they used to hash the whole request, the customer's name and e-mail included).
STARTS = (BkashOp.APPROVAL_URL, MonetixOp.PAYMENT_INSTRUCTIONS, MonetixOp.PAYMENT_PAGE)
START_UPDATE = re.compile(rf"({'|'.join(STARTS)})-\d+")


def _without_payload_data(obj):
    """The history's JSON with each payload's base64 ``data`` blanked: what is left is what Temporal
    stores unencoded (ids, names, metadata). Searched as text, base64 would match a short name by
    chance (one 5-letter name in ~10^9 base64 characters)."""
    if isinstance(obj, dict):
        if _is_payload(obj):
            return {**obj, "data": ""}
        return {k: _without_payload_data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without_payload_data(v) for v in obj]
    return obj


def _update_ids(obj) -> list[str]:
    """Every update id in a raw history's JSON (admitted, accepted, completed; protocol ids)."""
    return [v for d in _dicts(obj) for k, v in d.items()
            if k in ("updateId", "protocolInstanceId") and isinstance(v, str)]


def _derived(value: str) -> list[str]:
    """The value and what a hash of it would show in an id (hex digests and their 12-char heads)."""
    digests = [hashlib.new(name, value.encode()).hexdigest() for name in ("sha256", "sha1", "md5")]
    return [value, *digests, *(d[:12] for d in digests)]


def _show(workflow_id: str, address: str, *codec: str) -> tuple[str, list[bytes]]:
    out = subprocess.run([str(TEMPORAL), "workflow", "show", "-w", workflow_id, "--address",
                          address, "--output", "json", *codec],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout, _payload_bytes(json.loads(out.stdout))


async def test_raw_histories_hold_no_customer_data_and_decode_through_the_codec(stack, dev_env):
    # A provider refusal whose message echoes the customer's account number (some do).
    echo_req = gate_request(stack)
    await stack.monetix.add_fault("sale", "error_code", code="3060",
                                  message=f"account {ACCOUNT} is blocked",
                                  match={"payment_id": echo_req.sale.payment_id})
    await start_gate_purchase(stack.client, echo_req, task_queue=stack.settings.task_queue)
    echoed = await purchase_result(stack, echo_req)
    assert ACCOUNT in echoed.detail  # the merchant, with the key, reads the provider's words
    # A bKash payment whose payer reference is the customer's wallet number.
    bk, url = await pay(stack, payer_reference=DEFAULT_WALLET)
    await stack.customer.cancel(url.bkash_url)
    await result(stack, bk)

    address = dev_env.client.service_client.config.target_host
    ids: list[str] = []
    attributes: list[str] = []
    async for wf in stack.client.list_workflows():
        ids.append(wf.id)
        attributes.append(repr(wf.typed_search_attributes))
    assert echo_req.workflow_id in ids and bk.workflow_id in ids

    # Raw, as anyone with the namespace sees them without the codec: no personal data in any
    # payload. Every history is read over the API (the same bytes the stock CLI prints, without a
    # process per workflow); the two made here through the stock CLI as well.
    leaks = []
    limit = asyncio.Semaphore(16)

    async def raw(workflow_id: str) -> tuple[str, list[bytes]]:
        async with limit:
            history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
        text = history.to_json()
        return text, _payload_bytes(json.loads(text))

    histories = await asyncio.gather(*(raw(i) for i in ids))
    histories += await asyncio.gather(*(asyncio.to_thread(_show, i, address)
                                        for i in (echo_req.workflow_id, bk.workflow_id)))
    for workflow_id, (text, payloads) in zip([*ids, echo_req.workflow_id, bk.workflow_id],
                                             histories):
        plain = json.dumps(_without_payload_data(json.loads(text)))
        blob = plain.encode() + b"\n".join(payloads)
        leaks += [(workflow_id, v) for v in PERSONAL if v.encode() in blob]
    assert leaks == [], leaks[:10]
    for text in attributes + ids:
        assert not any(v in text for v in PERSONAL), text

    # Update ids are stored in plain text too: no personal value and no hash of one in any; a
    # start's is only the update's name and the amount.
    update_ids = {u for text, _ in histories for u in _update_ids(json.loads(text))}
    starts = {u for u in update_ids if u.startswith(tuple(f"{name}-" for name in STARTS))}
    assert {f"{MonetixOp.PAYMENT_INSTRUCTIONS}-{echo_req.amount_poisha}",
            f"{BkashOp.APPROVAL_URL}-{bk.amount_poisha}"} <= starts, sorted(starts)[:10]
    assert [u for u in starts if not START_UPDATE.fullmatch(u)] == []
    derived = {v: _derived(v) for v in PERSONAL}
    leaked_ids = [(u, v) for u in update_ids for v, forms in derived.items()
                  if any(f.lower() in u.lower() for f in forms)]
    assert leaked_ids == [], leaked_ids[:10]

    # Through the codec server, with its token: the full story (the customer, the echoed refusal).
    token = secrets.token_urlsafe(32)
    keys = load_keys()
    assert keys is not None
    async with serve_asgi(create_codec_server(keys, token, allowed_origins=[])) as codec_url:
        text, payloads = await asyncio.to_thread(
            _show, echo_req.workflow_id, address, "--codec-endpoint", codec_url,
            "--codec-auth", f"Bearer {token}")
        decoded = b"\n".join(payloads) + text.encode()
        assert CUSTOMER["email"].encode() in decoded and b"is blocked" in decoded
        # Without the token the CLI gets no plain text.
        refused = await asyncio.to_thread(
            subprocess.run, [str(TEMPORAL), "workflow", "show", "-w", echo_req.workflow_id,
                             "--address", address, "--output", "json", "--codec-endpoint",
                             codec_url], capture_output=True, text=True, timeout=60)
        assert CUSTOMER["email"] not in refused.stdout
