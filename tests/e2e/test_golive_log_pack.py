"""bKash's go-live log pack (golive/): made against the local sandbox golive starts itself, with the
project's own client, and checked as bKash's reviewer and a leak hunter would read it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest_asyncio

from golive.cli import run as golive_cli
from golive.pack import render
from golive.scenarios import MAIN, VOID, run_all
from golive.target import local_sandbox
from providers import bkash_codes as c
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash.admin import BkashSandboxAdmin

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = BkashSandboxConfig()
BKASH_ORDER = ["Grant Token", "Refresh Token", "Create Payment", "Execute Payment",
               "Query Payment", "Capture", "Void", "Search Transaction Details",
               "Refund Transaction", "Refund Status", "Error Code Implementation"]
FULL_WALLET = re.compile(r"(?<!\d)(?:88)?01\d{9}(?!\d)")
HEADING = re.compile(r"^\[(\d+)\] (.+)$", re.M)


@pytest_asyncio.fixture(scope="module")
async def made():
    """One run, with the sandbox still up afterwards so its ledger can be read."""
    async with local_sandbox() as target, httpx.AsyncClient(timeout=10) as http:
        run = await run_all(target)
        admin = BkashSandboxAdmin(target.sandbox_admin_url, http)
        ledgers = {pid: [e["kind"] for e in await admin.ledger(payment_id=pid)]
                   for pid in (run.main_payment_id, run.void_payment_id)}
        yield run, render(run), ledgers


def sections(text: str) -> dict[str, str]:
    marks = list(HEADING.finditer(text))
    return {m.group(2): text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
            for i, m in enumerate(marks)}


def error_cases(text: str) -> dict[str, str]:
    body = sections(text)["Error Code Implementation"]
    parts = re.split(r"^\(([a-z])\) ", body, flags=re.M)
    return {part.splitlines()[0]: part for part in parts[2::2]}


def only_case(text: str, starts: str) -> str:
    found = [body for title, body in error_cases(text).items() if title.startswith(starts)]
    assert len(found) == 1, f"no single error case starting {starts!r}: {list(error_cases(text))}"
    return found[0]


async def test_pack_has_every_api_section_in_bkash_order(made):
    _, text, _ = made
    numbered = HEADING.findall(text)
    assert [title for _, title in numbered] == BKASH_ORDER
    assert [int(n) for n, _ in numbered] == list(range(1, len(BKASH_ORDER) + 1))
    for title, body in sections(text).items():
        if title != "Error Code Implementation":
            for field in ("API Title:", "API URL: POST ", "Request Body:",
                          "API Response: HTTP 200"):
                assert field in body, f"{title} lacks {field!r}"


async def test_create_execute_and_query_share_one_payment_id_and_query_follows_a_lost_answer(made):
    run, text, ledgers = made
    s, pid = sections(text), run.main_payment_id
    assert f'"paymentID": "{pid}"' in s["Create Payment"]
    for title in ("Execute Payment", "Query Payment", "Capture"):
        assert re.search(r'Request Body:\n  \{\n    "paymentID": "' + pid + '"', s[title]), title
    assert "never read" in s["Execute Payment"]
    assert '"transactionStatus": "Authorized"' in s["Query Payment"]
    # The UAT rule: query only where execute's answer was lost; the voided payment had none.
    main_calls = [e.operation for e in run.traffic.of(MAIN)]
    assert main_calls.count("query") == 1
    assert main_calls.index("query") == main_calls.index("execute") + 1
    assert "query" not in [e.operation for e in run.traffic.of(VOID)]
    # bKash's own ledger: one authorization, captured once, refunded once; the other voided.
    assert ledgers == {pid: ["AUTHORIZE", "CAPTURE", "REFUND"],
                       run.void_payment_id: ["AUTHORIZE", "VOID"]}


async def test_error_section_holds_real_answers_for_balance_wrong_pin_and_duplicate_capture(made):
    run, text, _ = made
    balance = only_case(text, "Insufficient Balance (2023)")
    assert '"statusCode": "2023"' in balance
    assert '"statusMessage": "Insufficient Balance"' in balance and "018*****817" in balance
    assert "BkashCustomerDeclined (2023) → declined, no retry" in balance
    page = only_case(text, "Wrong PIN on bKash's page")
    assert "status=failure" in page and '"transactionStatus": "Initiated"' in page
    assert "Execute is never sent" in page and "API Title: Execute Payment" not in page
    pin = only_case(text, "Wrong PIN (2014)")
    assert '"statusCode": "2014"' in pin and '"statusMessage": "Wrong PIN"' in pin
    duplicate = only_case(text, "Duplicate capture (2119)")
    assert duplicate.index("API Title: Capture Payment") < duplicate.index('"statusCode": "2119"')
    assert f'"paymentID": "{run.main_payment_id}"' in duplicate
    assert "BkashAlreadySettled (2119) → resolved by query" in duplicate
    assert '"transactionStatus": "Completed"' in duplicate


async def test_error_section_lists_every_code_the_project_maps(made):
    _, text, _ = made
    table = sections(text)["Error Code Implementation"].split("Real answers from this run")[0]
    mapped = (c.RETRYABLE_CODES | c.ALREADY_SETTLED_CODES | c.CUSTOMER_DECLINE_CODES
              | c.INVALID_STATE_CODES | c.MERCHANT_CONFIG_CODES | c.REFUND_RETRYABLE_CODES
              | c.REFUND_OVER_LIMIT_CODES | c.REFUND_WINDOW_CODES | c.REFUND_ALREADY_REFUNDED_CODES
              | c.REFUND_NOT_REFUNDABLE_CODES | c.REFUND_MERCHANT_CONFIG_CODES)
    listed = set(re.findall(r"^  (\d{3,4}) ", table, re.M))
    assert listed == mapped
    assert re.search(r"^  2023 +Insufficient Balance\n"
                     r" +BkashCustomerDeclined → declined, no retry", table, re.M)
    assert re.search(r"^  2003 +Process failed\n +BkashRetryableError → retried$", table, re.M)


async def test_no_secret_and_no_full_wallet_number_anywhere_in_the_pack(made):
    run, text, _ = made
    issued = set()
    for e in run.traffic.exchanges:
        if e.operation in ("grant", "refresh"):
            issued |= {e.response_body["id_token"], e.response_body["refresh_token"]}
        if "Authorization" in e.request_headers:
            issued.add(e.request_headers["Authorization"])
    assert len(issued) >= 3  # two id_tokens (grant, refresh) and the refresh_token
    for secret in issued | run.secrets:
        # Random values: not even a piece of one, every 12-character slice of it is absent.
        for i in range(0, max(1, len(secret) - 11), 12):
            assert secret[i:i + 12] not in text, f"a piece of a secret is in the pack: {secret[:4]}"
    # The sandbox's app secret shares its start with the app key, which the pack names on purpose.
    for secret in (SANDBOX.app_secret, SANDBOX.password):
        assert secret not in text
    assert re.findall(r'"app_secret": "([^"]*)"|password: (.*)', text) \
        == [("", "[REDACTED]"), ("[REDACTED]", "")] * 2  # grant and refresh: header, body
    assert not FULL_WALLET.findall(text)
    assert "017*****575" in text and "88017*****575" in text  # masked, not dropped


async def test_cli_writes_the_pack_and_names_a_missing_out_directory(tmp_path, capsys):
    out = tmp_path / "bkash-golive.txt"
    assert await golive_cli(["--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(out) and printed[1].startswith("golive: 10 API sections")
    assert out.read_text().startswith("bKash Tokenized Checkout (Auth & Capture)")
    missing = tmp_path / "no-such-dir" / "pack.txt"
    assert await golive_cli(["--out", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --out {missing}: the directory") and "does not exist" in error
    assert not missing.parent.exists()


def test_starter_dispatches_golive_log_without_temporal(tmp_path):
    out = tmp_path / "pack.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "BKASH_"))}
    done = subprocess.run([sys.executable, "starter.py", "golive-log", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(out) and "golive:" in done.stdout
    assert "[11] Error Code Implementation" in out.read_text()
    bad = subprocess.run([sys.executable, "starter.py", "golive-log"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--out" in bad.stderr
