"""The pack as bKash's go-live review asks for it: per API "API Title / API URL / Request Body /
API Response" in plain text (production.md §2), then "Error Code Implementation". Everything
written goes through golive.redact: field by field first, then the whole text once more."""

from __future__ import annotations

import json
import time
from typing import Any

from contracts.money import format_bdt
from golive import codes
from golive.redact import redact, secrets_in
from golive.scenarios import AMOUNT_POISHA, MAIN, REFUND_POISHA, VOID, Run
from golive.target import REGULAR_WALLET
from golive.traffic import Exchange

# (section, operation, scenario): the exchange each API section shows, in bKash's order.
SECTIONS = (
    ("Grant Token", "grant", None),
    ("Refresh Token", "refresh", None),
    ("Create Payment", "create", MAIN),
    ("Execute Payment", "execute", MAIN),
    ("Query Payment", "query", MAIN),
    ("Capture", "capture", MAIN),
    ("Void", "void", VOID),
    ("Search Transaction Details", "search", MAIN),
    ("Refund Transaction", "refund", MAIN),
    ("Refund Status", "refund_status", MAIN),
)
ERROR_SECTION = "Error Code Implementation"
_API_TITLES = {"grant": "Grant Token", "refresh": "Refresh Token", "create": "Create Payment",
               "execute": "Execute Payment", "query": "Query Payment",
               "capture": "Capture Payment", "void": "Void Payment",
               "search": "Search Transaction Details", "refund": "Refund Transaction",
               "refund_status": "Refund Status"}
_RULE = "-" * 88


def render(run: Run) -> str:
    """The whole pack, redacted."""
    creds = run.target.creds
    known = run.secrets | {creds.app_secret.get_secret_value(), creds.password.get_secret_value()}
    for e in run.traffic.exchanges:
        known |= secrets_in(e.response_body) | secrets_in(e.request_body)
    lines = _header(run)
    notes = _notes(run)
    for number, (title, operation, scenario) in enumerate(SECTIONS, start=1):
        lines += _heading(number, title)
        found = [e for e in run.traffic.exchanges if e.operation == operation
                 and (scenario is None or e.scenario == scenario)]
        if notes.get(operation):
            lines += [notes[operation], ""]
        lines += _exchange(found[0], known) if found else [f"(no {title} call in this run)"]
    lines += _heading(len(SECTIONS) + 1, ERROR_SECTION) + _error_section(run, known)
    return redact("\n".join(lines) + "\n", known)


def summary(run: Run) -> str:
    produced = [c.got_code for c in run.cases if c.got_code]
    return (f"{len(SECTIONS)} API sections, {len(produced)} real error answers "
            f"({', '.join(sorted(set(produced), key=int))}), {len(run.traffic.exchanges)} calls to "
            f"{run.target.description}; create/execute/query on paymentID {run.main_payment_id}")


def _header(run: Run) -> list[str]:
    creds = run.target.creds
    lines = [
        "bKash Tokenized Checkout (Auth & Capture): sandbox API log for the go-live review",
        "",
        f"Generated:  {time.strftime('%Y-%m-%d %H:%M:%S %z')} by `python -m golive` "
        "(bkash-temporal-payments)",
        f"Against:    {run.target.description}",
        f"Merchant:   username {creds.username}, app key {creds.app_key}",
        "Every call below was made by the project's own bKash client (providers/bkash.py) and "
        "recorded on the wire",
        "(the headers it set and the JSON as sent and received; httpx's own headers left out).",
        "Redacted:   app_secret, password, id_token, refresh_token, Authorization values and the "
        "result-link token",
        "            of each callbackURL: [REDACTED]; wallet numbers keep a prefix and the last 3 "
        "digits (018*****817).",
        "",
        f"Create, Execute and Query Payment use ONE paymentID: {run.main_payment_id}. Query "
        "Payment is called because",
        "Execute's answer was lost (golive drops that answer on purpose). The project never calls "
        "Query Payment after a",
        "successful Execute (Void shows a payment executed and voided without one); it asks only "
        "when an answer is",
        "missing or cannot be taken as it stands: a lost answer, an unsigned failure/cancel "
        "return, an \"already",
        "completed\" code (section [11] shows each).",
    ]
    if run.skipped:
        lines += ["", "Not produced against this target:"] + [f"  - {s}" for s in run.skipped]
    return lines + [""]


def _notes(run: Run) -> dict[str, str]:
    void_exec = run.traffic.of(VOID, "execute")
    void_trx = (void_exec[0].response_body or {}).get("trxID") if void_exec else None
    return {
        "grant": "The run's first call. The token is kept by the token manager "
                 "(providers/bkash_tokens.py) and reused for every call; never a grant per "
                 "request.",
        "refresh": "Sent by the token manager at minute 50 of the token's life (golive moves its "
                   "token clock there) before Capture: one grant and one refresh, within bKash's "
                   "two token calls an hour.",
        "create": f"mode 0011, intent authorization (Auth & Capture), {format_bdt(AMOUNT_POISHA)} "
                  f"BDT. The customer then approved on bKash's page (wallet {REGULAR_WALLET}, OTP, "
                  "PIN) and came back with status=success.",
        "execute": "The paymentID of Create above.",
        "query": "The same paymentID as Create and Execute, because Execute's answer above was "
                 "lost: Authorized, so the project goes on to Capture.",
        "capture": "After the service was delivered; the project sends it once (each retry asks "
                   "Query Payment first).",
        "void": f"A second payment, {run.void_payment_id}, created and approved the same way; its "
                f"Execute answered Authorized (trxID {void_trx}), so no Query Payment; the service "
                "could not be delivered, so it is voided.",
        "search": "The trxID of the capture above.",
        "refund": f"Part of payment 1: {format_bdt(REFUND_POISHA)} of "
                  f"{format_bdt(AMOUNT_POISHA)} BDT, with the merchant's sku and reason.",
        "refund_status": "The same paymentID and trxID. The project asks it before re-sending "
                         "any refund whose answer was lost.",
    }


def _heading(number: int, title: str) -> list[str]:
    return [_RULE, f"[{number}] {title}", _RULE, ""]


def _json(value: Any, known: set[str]) -> list[str]:
    if value is None:
        return ["  (empty)"]
    text = json.dumps(redact(value, known), indent=2, ensure_ascii=False) \
        if isinstance(value, (dict, list)) else str(redact(value, known))
    return ["  " + line for line in text.splitlines()]


def _exchange(e: Exchange, known: set[str]) -> list[str]:
    lines = [f"API Title: {_API_TITLES.get(e.operation, e.operation)}",
             f"API URL: {e.method} {redact(e.url, known)}",
             "Request Headers:"]
    lines += [f"  {k}: {v}" for k, v in redact(e.request_headers, known).items()]
    lines += ["Request Body:"] + _json(e.request_body, known)
    if e.status is None:
        lines += ["API Response: none (no answer reached the client)"]
    elif e.lost:
        lines += [f"API Response: HTTP {e.status}, sent by bKash but never read: {e.lost}. "
                  "The client saw no answer (BkashNoResponse)."]
    else:
        lines += [f"API Response: HTTP {e.status}"]
    if e.status is not None:
        lines += _json(e.response_body, known)
    return lines + [""]


def _error_section(run: Run, known: set[str]) -> list[str]:
    payments, refunds = codes.table_rows()
    lines = ["What the project does with each bKash code it maps: the class comes from "
             "providers/bkash_errors.py",
             "(classify / classify_refund over providers/bkash_codes.py), the action from the "
             "workflows' retry rules.", "", "Actions:"]
    for label, rule in dict(codes.PAYMENT_ACTIONS.values()).items():
        lines.append(f"  {label}: {rule}.")
    for label, rule in codes.REFUND_ACTIONS.values():
        if label.startswith("retried"):
            lines.append(f"  {label} (refunds): {rule}.")
    lines += ["", "Payment APIs (create, execute, query, capture, void):"]
    lines += _rows(payments)
    lines += ["", "Refund Transaction and Refund Status:"]
    lines += _rows(refunds)
    lines += ["", "Answers without a bKash code:"]
    lines += [f"  {what}: {rule}" for what, rule in codes.WITHOUT_A_CODE]
    lines += ["", "Real answers from this run (request and answer as sent and received, then what "
              "the project did):", ""]
    for letter, case in zip("abcdefghijklmnopqrstuvwxyz", run.cases):
        got = f"bKash answered {case.got_code}" if case.got_code else "no bKash code"
        if case.code and case.got_code != case.code:
            # bKash's own sandbox may answer otherwise than the local one: say so, do not hide it.
            got = f"expected {case.code}, {got}"
        lines += [f"({letter}) {case.title}  [{got}]", f"  {case.note}"]
        pids = {e.payment_id for e in run.traffic.of(case.scenario) if e.payment_id}
        if pids:
            lines.append(f"  paymentID: {', '.join(sorted(pids))}")
        lines.append("")
        for e in run.traffic.of(case.scenario):
            if e.operation in case.show:
                lines += _exchange(e, known)
        lines += [f"  Project: {case.project}", ""]
    return lines


def _rows(rows: list[tuple[str, str, str, str]]) -> list[str]:
    out = []
    for code, message, cls, action in rows:
        out += [f"  {code:<5} {message or '(no text in bKash list)'}",
                f"        {cls} → {action}"]
    return out
