"""starter.py as a merchant's engineer runs it: configuration from the environment, Temporal from
envconfig (TEMPORAL_ADDRESS), output on stdout."""

import json

import pytest

from starter import _main
from tests.conftest import MONETIX, SANDBOX
from tests.support.bkash import wait_for_stage
from contracts.bkash import BkashPaymentRequest, BkashStage


@pytest.fixture
def cli_env(monkeypatch, stack, dev_env):
    env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": "default",
           "BKASH_BASE_URL": stack.settings.bkash.base_url, "BKASH_APP_KEY": SANDBOX.app_key,
           "BKASH_APP_SECRET": SANDBOX.app_secret, "BKASH_USERNAME": SANDBOX.username,
           "BKASH_PASSWORD": SANDBOX.password, "PAYMENTS_CALLBACK_BASE_URL": stack.endpoint_url,
           "PAYMENTS_TASK_QUEUE": stack.settings.task_queue,
           "MONETIX_PROJECT_ID": str(MONETIX.project_id), "MONETIX_SECRET_KEY": MONETIX.secret_key,
           "MONETIX_BASE_URL": stack.monetix_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return stack


async def test_cli_pays_reports_delivery_and_shows_status(cli_env, capsys):
    stack = cli_env
    invoice = stack.invoice("CLI")
    assert await _main(["pay", "--invoice", invoice, "--amount", "250.00"]) == 0
    started = json.loads(capsys.readouterr().out)
    await stack.customer.approve(started["bkash_url"])
    req = BkashPaymentRequest(invoice_number=invoice, amount_poisha=25000,
                              callback_base_url=stack.endpoint_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    assert await _main(["list", "--stage", "AUTHORIZED"]) == 0
    assert invoice in capsys.readouterr().out
    assert await _main(["deliver", invoice]) == 0
    capsys.readouterr()
    await stack.client.get_workflow_handle(req.workflow_id).result()
    assert await _main(["status", invoice]) == 0
    assert json.loads(capsys.readouterr().out)["stage"] == "CAPTURED"
    ledger = await stack.sandbox.ledger(invoice=invoice)
    assert [e["kind"] for e in ledger] == ["AUTHORIZE", "CAPTURE"]


async def test_cli_refuses_bad_input_with_the_rule(cli_env, capsys):
    assert await _main(["pay", "--invoice", "A&B", "--amount", "12.345"]) == 2
    assert "--amount" in capsys.readouterr().err
    assert await _main(["gate-pay", "--payment-id", "p-1", "--amount", "95.50",
                        "--customer-id", "c", "--email", "a@b.co", "--first-name", "A",
                        "--last-name", "B", "--ip", "203.0.113.7"]) == 2
    assert "multiple of 10 BDT" in capsys.readouterr().err


async def test_cli_runs_a_monetix_gate_purchase(cli_env, capsys):
    stack = cli_env
    pid = stack.invoice("MXCLI")
    assert await _main(["gate-pay", "--payment-id", pid, "--amount", "1000.00",
                        "--customer-id", "c-1", "--email", "a@b.co", "--first-name", "A",
                        "--last-name", "B", "--ip", "203.0.113.7", "--account", "01712345678"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["display_data"][0]["title"] == "account_number"
    trx = await stack.monetix_customer.pay_in_bkash(pid)
    assert await _main(["txn", pid, trx]) == 0
    capsys.readouterr()
    await stack.client.get_workflow_handle(f"monetix-{pid}").result()
    assert await _main(["gate-status", pid]) == 0
    assert json.loads(capsys.readouterr().out)["stage"] == "SUCCESS"
