"""starter.py as a new user meets it: as a process, with only the Temporal connection and
PAYMENTS_* in the environment (no provider secret), and every mistake answered by one clear line
naming the flag (issue 8 §6)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.bkash import BkashStage
from contracts.monetix import MonetixStage
from tests.support.bkash import pay, result, wait_for_stage
from codec_server import create_app as create_codec_server
from embedded import serve_asgi
from merchant_client.encryption import load_keys
from tests.support.monetix import purchase_result, start_gate, wait_for

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("BKASH_", "MONETIX_", "PAYMENTS_", "TEMPORAL_"))}
    return subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], cwd=ROOT,
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)


@pytest.fixture
def temporal_env(stack, dev_env) -> dict[str, str]:
    # Only what merchant code has: the Temporal connection, the endpoint's public URL and the
    # payload key (customer data in histories is encrypted: the merchant's code reads it too).
    return {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": "default", "PAYMENTS_TASK_QUEUE": stack.settings.task_queue,
            "PAYMENTS_CALLBACK_BASE_URL": stack.endpoint_url,
            "PAYMENTS_ENCRYPTION_KEYS": os.environ["PAYMENTS_ENCRYPTION_KEYS"]}


async def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run_cli, *args, env=env)


def test_help_lists_every_subcommand():
    out = run_cli("--help").stdout
    for command in ("pay", "deliver", "fail", "status", "list", "gate-pay", "page-url", "txn",
                    "clarify", "gate-status"):
        assert f"    {command}" in out, command


def test_an_unreachable_temporal_is_one_clear_line():
    done = run_cli("status", "INV-1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach Temporal at 127.0.0.1:1")
    assert "TEMPORAL_ADDRESS" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def test_a_wrong_namespace_is_named_not_reported_as_a_missing_payment(temporal_env):
    done = await cli("status", "INV-1", env={**temporal_env, "TEMPORAL_NAMESPACE": "nope"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "namespace 'nope'" in done.stderr and "TEMPORAL_NAMESPACE" in done.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["pay", "--invoice", "INV-1", "--amount", "-5"], "--amount -5: the amount is negative"),
    (["pay", "--invoice", "INV-1", "--amount", "0"], "--amount must be positive"),
    (["pay", "--invoice", "A<B", "--amount", "5.00"], "--invoice must not contain <"),
    (["gate-pay", "--payment-id", "p-1", "--amount", "95.50", "--customer-id", "c",
      "--email", "nope", "--first-name", "A", "--last-name", "B", "--ip", "203.0.113.7"],
     "--amount 9550 (95.50 BDT) is not a multiple of 10 BDT"),
    (["gate-pay", "--payment-id", "p<1", "--amount", "100.00", "--customer-id", "c",
      "--email", "a@b.co", "--first-name", "A", "--last-name", "B", "--ip", "203.0.113.7"],
     "--payment-id 'p<1' must not contain <"),
    (["list", "--stage", "nonsense"], "--stage 'nonsense' is not a bkash stage"),
    (["clarify", "P-1"], "--account NUMBER or --fields JSON"),
])
def test_bad_input_names_the_flag_and_the_rule(args, expected):
    # Refused before connecting: the address is unreachable on purpose.
    done = run_cli(*args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1",
                               "PAYMENTS_CALLBACK_BASE_URL": "https://shop.example"})
    assert done.returncode == 2, done
    assert expected in done.stderr, done.stderr
    assert "Value error" not in done.stderr and "Traceback" not in done.stderr
    assert "amount_poisha" not in done.stderr


async def test_the_cli_needs_no_provider_secret(stack, temporal_env):
    invoice = stack.invoice("NOSECRET")
    done = await cli("pay", "--invoice", invoice, "--amount", "120.00", env=temporal_env)
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout)
    await stack.customer.approve(started["bkash_url"])
    listed = await cli("list", "--stage", "authorized", env=temporal_env)
    assert listed.returncode == 0 and invoice in listed.stdout
    assert (await cli("deliver", invoice, env=temporal_env)).returncode == 0
    status = await cli("status", invoice, env=temporal_env)
    assert status.returncode == 0
    ledger = await stack.sandbox.ledger(invoice=invoice)
    assert [(e["kind"], e["amount"]) for e in ledger][:1] == [("AUTHORIZE", "120.00")]


async def test_pay_for_a_finished_invoice_is_one_clear_error(stack, temporal_env):
    req, url = await pay(stack)
    await stack.customer.cancel(url.bkash_url)
    await result(stack, req)
    done = await cli("pay", "--invoice", req.invoice_number, "--amount", "500.00",
                     env=temporal_env)
    assert done.returncode == 2
    assert "already paid and ended CANCELLED" in done.stderr
    assert "Future exception was never retrieved" not in done.stderr
    assert "Traceback" not in done.stderr


async def test_clarify_answers_monetix_from_the_cli(stack, temporal_env):
    req, shown = await start_gate(stack, account=None)
    assert shown.stage is MonetixStage.AWAITING_CLARIFICATION
    done = await cli("clarify", req.sale.payment_id, "--account", "01798765432", env=temporal_env)
    assert done.returncode == 0, done.stderr
    await wait_for(stack, req, MonetixStage.AWAITING_TRANSACTION_ID)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    assert (await cli("txn", req.sale.payment_id, trx, env=temporal_env)).returncode == 0
    res = await purchase_result(stack, req)
    assert res.outcome is MonetixStage.SUCCESS and res.account_number == "01798765432"


async def test_an_update_from_the_stock_temporal_cli_without_input_is_a_decision(stack, dev_env):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    temporal = Path(sys.executable).parent / "temporal"
    # Payloads are encrypted: the stock CLI reads them through the codec server (README).
    token = secrets.token_urlsafe(32)
    codec = create_codec_server(load_keys(), token, allowed_origins=[])
    async with serve_asgi(codec) as codec_url:
        done = await asyncio.to_thread(subprocess.run, [
            str(temporal), "workflow", "update", "execute", "--address",
            dev_env.client.service_client.config.target_host, "--workflow-id", req.workflow_id,
            "--name", "service_delivered", "--codec-endpoint", codec_url,
            "--codec-auth", f"Bearer {token}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    ledger = await stack.sandbox.ledger(invoice=req.invoice_number)
    assert [e["kind"] for e in ledger] == ["AUTHORIZE", "CAPTURE"]


async def test_the_cli_without_the_payload_key_says_which_setting_is_missing(stack, temporal_env):
    req, url = await pay(stack)
    env = {k: v for k, v in temporal_env.items() if k != "PAYMENTS_ENCRYPTION_KEYS"}
    done = await cli("status", req.invoice_number, env=env)
    assert done.returncode == 2, done.stderr
    assert "encrypted" in done.stderr and "PAYMENTS_ENCRYPTION_KEYS_FILE" in done.stderr
    assert "Traceback" not in done.stderr
    await stack.customer.cancel(url.bkash_url)
    await result(stack, req)
