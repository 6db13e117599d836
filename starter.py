"""Merchant-side CLI over the merchant client (merchant_client/), and the example a merchant copies.

    python starter.py pay --invoice INV-1001 --amount 500.00     # prints the bkashURL
    python starter.py deliver INV-1001                           # service delivered → capture
    python starter.py fail INV-1001 --reason "room unavailable"  # service failed → void
    python starter.py status INV-1001
    python starter.py list --stage authorized

    python starter.py gate-pay --payment-id P-1 --amount 1000.00 --customer-id C-1 \
        --email c@example.com --ip 203.0.113.7 --first-name Rahim --last-name Uddin
    python starter.py txn P-1 8KJ1056KR3                         # the customer's bKash TrxID
    python starter.py clarify P-1 --account 01712345678          # what Monetix asked for
    python starter.py gate-status P-1
    python starter.py page-url --payment-id P-2 --amount 500.00 --customer-id C-1 ...

    python starter.py refund INV-1001 --refund-id RF-1 --amount 300.00 --reason "late check-in" \
        --sku room-101                                           # bKash (sku required)
    python starter.py refund P-1 --provider monetix --refund-id RF-2 --amount 100.00 --reason ...
    python starter.py refunds INV-1001                           # the payment's refund ledger

    python starter.py events --undelivered                       # notifications not delivered
    python starter.py events replay bkash-INV-1001/3             # send one again, same event_id
    python starter.py reconcile schedule | run --from .. --to .. | report --from .. --to .. | trigger
    python starter.py golive-log --out results/bkash-golive-log.txt   # bKash's go-live log pack

    python starter.py pay --merchant-account brand2 --invoice INV-7 --amount 500.00
                                    # any command: the merchant account (default: "default")

Needs only the Temporal connection (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...: temporalio envconfig)
and, to start payments, PAYMENTS_CALLBACK_BASE_URL. Provider secrets are the worker's alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta

from pydantic import ValidationError

import runtime_exit
from merchant_client.encryption import EncryptionConfigError, UnknownKeyError
from contracts.bkash import BkashPaymentRequest, BkashStage
from contracts.common import DEFAULT_ACCOUNT, check_account_id
from contracts.refunds import RefundRequest, payment_workflow_id, refunds_workflow_id
from contracts.money import parse_bdt
from contracts.monetix import MonetixPurchaseRequest, MonetixStage, PaymentPagePurchaseRequest
from contracts.monetix_requests import problems_of
from merchant_client import (
    PaymentError,
    connect,
    list_payments,
    load_client_settings,
    payment_state,
    provide_clarification,
    purchase_state,
    refund,
    refunds,
    report_service_delivered,
    report_service_failed,
    start_gate_purchase,
    start_payment,
    start_payment_page_purchase,
    submit_transaction_id,
)
from merchant_client.listing import stage_for
from merchant_client.stalled import DEFAULT_STAGES, check_stages, list_stalled
from merchant_client.notifications import notifications_of, replay_event, undelivered_events
from merchant_client.reconciliation_cli import (
    add_reconcile_parser,
    prepare_reconcile,
    run_reconcile,
)

# Request fields (as pydantic and Monetix's docs name them) → the CLI flag a user typed.
FLAGS = {
    "invoice_number": "--invoice", "amount_poisha": "--amount",
    "callback_base_url": "PAYMENTS_CALLBACK_BASE_URL",
    "general.payment_id": "--payment-id", "payment_id": "--payment-id",
    "payment.amount": "--amount", "payment_amount": "--amount",
    "customer.id": "--customer-id", "customer_id": "--customer-id",
    "customer.email": "--email", "customer_email": "--email",
    "customer.ip_address": "--ip", "customer.first_name": "--first-name",
    "customer_first_name": "--first-name", "customer.last_name": "--last-name",
    "customer_last_name": "--last-name", "account.number": "--account",
    "customer_account_number": "--account",
    "refund_id": "--refund-id", "reason": "--reason", "sku": "--sku", "payment_key": "PAYMENT",
    "account_id": "--merchant-account",
}
_LEADING_NAME = re.compile(r"^([A-Za-z_.]+)\b")


def _in_flag_words(text: str, field: str | None = None) -> str:
    """A model's message with the field named as the CLI flag, without pydantic's prefix."""
    text = text.removeprefix("Value error, ")
    match = _LEADING_NAME.match(text)
    if match and match.group(1) in FLAGS:
        return FLAGS[match.group(1)] + text[match.end():]
    flag = FLAGS.get(field or "")
    if flag:
        return f"{flag}: " + text.replace(f"{field} ", "", 1)
    return text


def _bkash_problems(exc: ValidationError) -> str:
    return "; ".join(_in_flag_words(e["msg"], str(e["loc"][-1]) if e["loc"] else None)
                     for e in exc.errors(include_input=False))


def _amount(text: str) -> int:
    if text.strip().startswith("-"):
        raise PaymentError(f"--amount {text}: the amount is negative; give a positive BDT amount, "
                           "e.g. 500.00")
    try:
        amount = parse_bdt(text)
    except ValueError:
        raise PaymentError(f"--amount {text!r}: not a BDT amount with at most two decimals, "
                           "e.g. 500.00") from None
    return amount


def _callback_base_url(settings) -> str:
    if not settings.callback_base_url:
        raise PaymentError("PAYMENTS_CALLBACK_BASE_URL is not set: the merchant endpoint's public "
                           "base URL, where bKash and Monetix send the customer and callbacks")
    return settings.callback_base_url


def _account(args) -> str:
    """--merchant-account (merchant code building ``args`` itself may leave it out)."""
    return getattr(args, "merchant_account", None) or DEFAULT_ACCOUNT


def bkash_request(args, settings) -> BkashPaymentRequest:
    amount = _amount(args.amount)
    try:
        return BkashPaymentRequest.model_validate(
            {"invoice_number": args.invoice, "amount_poisha": amount,
             "callback_base_url": _callback_base_url(settings), "account_id": _account(args)},
            context={"max_amount_poisha": settings.max_amount_poisha})
    except ValidationError as exc:
        raise PaymentError(_bkash_problems(exc)) from None


def monetix_request(args, settings, *, gate: bool):
    amount = _amount(args.amount)
    try:
        if gate:
            return MonetixPurchaseRequest.model_validate({
                "sale": {"payment_id": args.payment_id, "amount_poisha": amount,
                         "account_number": args.account,
                         "customer": {"id": args.customer_id, "ip_address": args.ip,
                                      "first_name": args.first_name,
                                      "last_name": args.last_name, "email": args.email}},
                "callback_base_url": _callback_base_url(settings),
                "account_id": _account(args)})
        return PaymentPagePurchaseRequest.model_validate({
            "params": {"payment_id": args.payment_id, "amount_poisha": amount,
                       "customer_id": args.customer_id, "first_name": args.first_name,
                       "last_name": args.last_name, "email": args.email,
                       "account_number": args.account},
            "callback_base_url": _callback_base_url(settings),
            "account_id": _account(args)})
    except ValidationError as exc:
        raise PaymentError("; ".join(_in_flag_words(p) for p in problems_of(exc))) from None


def refund_request(args) -> RefundRequest:
    amount = _amount(args.amount)
    try:
        return RefundRequest(provider=args.provider, payment_key=args.payment, amount_poisha=amount,
                             refund_id=args.refund_id, reason=args.reason, sku=args.sku,
                             account_id=_account(args))
    except ValidationError as exc:
        raise PaymentError(_bkash_problems(exc)) from None


def clarification_fields(args) -> dict:
    fields: dict = {}
    if args.fields:
        try:
            fields = json.loads(args.fields)
        except ValueError as exc:
            raise PaymentError(f"--fields is not JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise PaymentError("--fields must be a JSON object, e.g. "
                               "'{\"account\": {\"number\": \"01712345678\"}}'")
    if args.account:
        fields.setdefault("account", {})["number"] = args.account
    if not fields:
        raise PaymentError("give what Monetix asked for: --account NUMBER or --fields JSON")
    return fields


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pay = sub.add_parser("pay", help="bKash: start a payment and print the bkashURL")
    pay.add_argument("--invoice", required=True, help="your invoice number (the payment's key)")
    pay.add_argument("--amount", required=True, help="BDT, e.g. 500.00")
    for name, text in (("deliver", "bKash: the service was delivered, capture the payment"),
                       ("fail", "bKash: the service cannot be delivered, void the payment"),
                       ("status", "bKash: show a payment's state and timeline")):
        p = sub.add_parser(name, help=text)
        p.add_argument("invoice")
        if name == "fail":
            p.add_argument("--reason", default="", help="shown in the payment's timeline")
    lst = sub.add_parser("list", help="list payments, optionally by stage")
    lst.add_argument("--stage", help="e.g. authorized, captured, awaiting_transaction_id (any case)")
    lst.add_argument("--provider", default="bkash", choices=["bkash", "monetix"])
    stl = sub.add_parser("stalled", help="payments resting in CAPTURING, VOIDING or REFUNDING "
                         "(or --stage) longer than --older-than-minutes: what payments_stalled counts")
    stl.add_argument("--stage", action="append",
                     help="a resting stage (repeatable); default CAPTURING, VOIDING, REFUNDING")
    stl.add_argument("--older-than-minutes", type=float, default=15.0,
                     help="resting longer than this (default 15, as PAYMENTS_STALL_AFTER_SECONDS)")
    for name, text in (("gate-pay", "Monetix: start a Gate purchase, print the instructions"),
                       ("page-url", "Monetix: start a Payment Page purchase, print its URL")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--payment-id", required=True, help="your payment id (the purchase's key)")
        p.add_argument("--amount", required=True, help="BDT, a multiple of 10, e.g. 1000.00")
        p.add_argument("--customer-id", required=True)
        p.add_argument("--email", required=True)
        p.add_argument("--first-name", required=True)
        p.add_argument("--last-name", required=True)
        p.add_argument("--account", help="the customer's bKash account number (optional)")
        if name == "gate-pay":
            p.add_argument("--ip", required=True, help="the customer's IP address")
    txn = sub.add_parser("txn", help="Monetix: submit the customer's bKash transaction ID")
    txn.add_argument("payment_id")
    txn.add_argument("transaction_id")
    clarify = sub.add_parser("clarify", help="Monetix: answer a clarification request")
    clarify.add_argument("payment_id")
    clarify.add_argument("--account", help="the customer's bKash account number")
    clarify.add_argument("--fields", help='JSON, e.g. \'{"account": {"number": "01712345678"}}\'')
    gst = sub.add_parser("gate-status", help="Monetix: show a purchase's state and timeline")
    gst.add_argument("payment_id")
    rfd = sub.add_parser("refund", help="refund (part of) a captured / successful payment")
    rfd.add_argument("payment", help="the invoice (bKash) or payment id (Monetix)")
    rfd.add_argument("--provider", default="bkash", choices=["bkash", "monetix"])
    rfd.add_argument("--refund-id", required=True, help="your refund's unique id (idempotency key)")
    rfd.add_argument("--amount", required=True, help="BDT, e.g. 300.00")
    rfd.add_argument("--reason", required=True)
    rfd.add_argument("--sku", help="bKash: required (what is refunded)")
    rfd.add_argument("--no-wait", action="store_true", help="return once the refund is accepted")
    rfs = sub.add_parser("refunds", help="show a payment's refund ledger")
    rfs.add_argument("payment", help="the invoice (bKash) or payment id (Monetix)")
    rfs.add_argument("--provider", default="bkash", choices=["bkash", "monetix"])
    evt = sub.add_parser("events", help="notifications: a payment's events and deliveries, the "
                         "undelivered ones (--undelivered), or `events replay EVENT_ID`")
    evt.add_argument("--undelivered", action="store_true",
                     help="every event whose delivery budget ran out")
    evt.add_argument("--payment", help="the invoice (bKash) or payment id (Monetix)")
    evt.add_argument("--provider", default="bkash", choices=["bkash", "monetix"])
    evt.add_argument("--refunds", action="store_true", help="the payment's refund events")
    evt_sub = evt.add_subparsers(dest="events_command", metavar="replay")
    evt_sub.add_parser("replay", help="send one event again, same event_id").add_argument(
        "event_id", help="as in the Payments-Event-Id header, e.g. bkash-INV-1001/3")
    add_reconcile_parser(sub)
    # Parsed by golive itself (_main hands it the rest of the line); listed here for --help.
    sub.add_parser("golive-log", help="bKash go-live review: write the sandbox log pack "
                   "(--out FILE [--bkash-sandbox-credentials]; README: bKash's go-live log pack)")
    for command in sub.choices.values():
        # Not --account: in the Monetix commands that is the customer's bKash account number.
        command.add_argument("--merchant-account", metavar="ID",
                             help="the merchant account (a bKash credential set / Monetix project "
                             "configured in the worker) the payment is made in; default "
                             f"{DEFAULT_ACCOUNT!r} (list: every account)")
    return parser


async def events_command(client, args: argparse.Namespace) -> None:
    if args.events_command == "replay":
        replay_id = await replay_event(client, args.event_id, task_queue=None)
        print(json.dumps({"event_id": args.event_id, "replayed_in": replay_id}))
    elif args.undelivered:
        for record in await undelivered_events(client):
            print(json.dumps(event_row(record)))
    elif args.payment:
        key = (refunds_workflow_id if args.refunds else payment_workflow_id)(
            args.provider, args.payment, args.merchant_account)
        stream = await notifications_of(client, key)
        for record in stream.events:
            print(json.dumps(event_row(record)))
    else:
        raise PaymentError("events: give --undelivered, --payment INVOICE, or replay EVENT_ID")


def event_row(record) -> dict:
    event = record.event
    return {"event_id": event.event_id, "type": event.type.value, "sequence": event.sequence,
            "occurred_at": event.occurred_at.isoformat(), "payment_key": event.payment_key,
            "state": record.state.value,
            "deliveries": [d.model_dump(mode="json", exclude_none=True) for d in record.deliveries]}


async def _main(argv: list[str]) -> int:
    if argv[:1] == ["golive-log"]:
        # Not merchant code: golive calls bKash itself (no Temporal), so it is only dispatched to.
        from golive import run as golive_log
        return await golive_log(argv[1:], prog="starter.py golive-log")
    args = build_parser().parse_args(argv)
    listed_account, args.merchant_account = args.merchant_account, \
        args.merchant_account or DEFAULT_ACCOUNT
    try:
        settings = load_client_settings()
        try:
            check_account_id(args.merchant_account, "--merchant-account")
        except ValueError as exc:
            raise PaymentError(str(exc)) from None
        if args.command == "list" and args.stage:
            args.stage = stage_for(args.provider, args.stage)  # refused before connecting
        if args.command == "stalled":
            args.stage = check_stages(args.stage or DEFAULT_STAGES)
            if not args.older_than_minutes > 0:
                raise PaymentError(f"--older-than-minutes {args.older_than_minutes:g}: must be "
                                   "more than 0")
        # Requests are validated before connecting: bad input is named before anything is sent.
        request = (bkash_request(args, settings) if args.command == "pay" else
                   monetix_request(args, settings, gate=args.command == "gate-pay")
                   if args.command in ("gate-pay", "page-url") else None)
        fields = clarification_fields(args) if args.command == "clarify" else None
        refund_req = refund_request(args) if args.command == "refund" else None
        reconcile_cmd = prepare_reconcile(args) if args.command == "reconcile" else None
        account = {"account_id": args.merchant_account}
        client = await connect()
        if args.command == "pay":
            url = await start_payment(client, request, task_queue=settings.task_queue)
            print(json.dumps(url.model_dump(mode="json"), indent=2))
            if url.stage is BkashStage.FAILED:
                raise PaymentError(f"invoice {args.invoice} FAILED: {url.detail}")
        elif args.command == "deliver":
            print((await report_service_delivered(client, args.invoice, **account))
                  .model_dump_json())
        elif args.command == "fail":
            print((await report_service_failed(client, args.invoice, args.reason, **account))
                  .model_dump_json())
        elif args.command == "status":
            print((await payment_state(client, args.invoice, **account)).model_dump_json(indent=2))
        elif args.command == "list":
            for row in await list_payments(client, args.stage, args.provider, listed_account):
                print(json.dumps(row))
        elif args.command == "stalled":
            for row in await list_stalled(client, args.stage,
                                          timedelta(minutes=args.older_than_minutes)):
                print(json.dumps(row))
        elif args.command == "gate-pay":
            shown = await start_gate_purchase(client, request, task_queue=settings.task_queue)
            print(shown.model_dump_json(indent=2))
            if shown.stage is MonetixStage.FAILED:
                raise PaymentError(f"Monetix payment_id {args.payment_id} FAILED: {shown.detail}")
        elif args.command == "page-url":
            page = await start_payment_page_purchase(client, request,
                                                     task_queue=settings.task_queue)
            if page.stage is MonetixStage.FAILED:
                raise PaymentError(f"Monetix payment_id {args.payment_id} FAILED: {page.detail}")
            print(page.payment_page_url)
        elif args.command == "txn":
            print((await submit_transaction_id(client, args.payment_id, args.transaction_id,
                                               **account)).model_dump_json(indent=2))
        elif args.command == "clarify":
            print((await provide_clarification(client, args.payment_id, fields, **account))
                  .model_dump_json(indent=2))
        elif args.command == "gate-status":
            print((await purchase_state(client, args.payment_id, **account))
                  .model_dump_json(indent=2))
        elif args.command == "refund":
            done = await refund(client, refund_req, task_queue=settings.task_queue,
                                callback_base_url=settings.callback_base_url,
                                wait=not args.no_wait)
            print(done.model_dump_json(indent=2))
        elif args.command == "refunds":
            print((await refunds(client, args.provider, args.payment, **account))
                  .model_dump_json(indent=2))
        elif args.command == "events":
            await events_command(client, args)
        elif args.command == "reconcile":
            await run_reconcile(client, reconcile_cmd, task_queue=settings.task_queue)
    except (PaymentError, UnknownKeyError, EncryptionConfigError) as exc:
        print(f"error: {getattr(exc, 'problem', exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(runtime_exit.run(_main(sys.argv[1:])))
