"""The payments worker: registers the workflows and the provider activities, shuts down gracefully.

    python worker.py            # reads BKASH_* / PAYMENTS_* / TEMPORAL_* from the environment
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.api.common.v1 import Payload
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

import runtime_exit
from merchant_client.connection import PaymentError
from merchant_client.stalled import watch_stalled
from merchant_client.encryption import AesGcmCodec, load_keys, plaintext_warning
from merchant_client.tracing import tracing_interceptors
from worker_metrics import (
    METRICS_SETTING,
    PaymentsMetrics,
    prometheus_runtime,
    stalled_gauge,
    token_call_counter,
    TokenBudgets,
)
from workflow_runner import payments_workflow_runner

from activities.bkash import BkashActivities
from activities.monetix import MonetixActivities
from activities.notifications import NotificationActivities, NotificationPublisher
from activities.payments import PaymentRecords
from activities.reconciliation import reconciliation_activities
from config import Settings, connect_temporal, load_settings
from providers.bkash import (
    BkashClient,
    BkashCredentials,
    BkashPaths,
    FileTokenStore,
    TokenManager,
    TokenStore,
)
from providers.bkash_config import credential_id
from providers.monetix import MonetixGateClient
from workflows.bkash import BkashAuthCapture
from workflows.monetix_gate import MonetixGatePurchase
from workflows.monetix_page import PaymentPagePurchase
from workflows.notification_stream import NotificationStream
from workflows.reconciliation import ReconciliationBatch, ReconciliationRun
from workflows.refunds import PaymentRefunds

WORKFLOWS = [BkashAuthCapture, MonetixGatePurchase, PaymentPagePurchase, PaymentRefunds,
             NotificationStream, ReconciliationRun, ReconciliationBatch]
# On every worker whatever its providers: each payment's notifications (README "Notifications"),
# reconciliation (README "Reconciliation"; Monetix items are reported unchecked without Monetix).
ALWAYS = (BkashAuthCapture, PaymentRefunds, NotificationStream, ReconciliationRun,
          ReconciliationBatch)


@contextlib.asynccontextmanager
async def provider_http_client(timeout: float) -> AsyncIterator[httpx.AsyncClient]:
    """One shared client per worker: keep-alive connections, the provider timeout on every call."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        yield http


def token_store_for(settings: Settings, creds: BkashCredentials) -> TokenStore | None:
    """Where one credential set's token and grant budget live (README "Several hosts"): Redis for
    every host, this host's file, or this process only."""
    choice = settings.bkash_token_store.get_secret_value()
    if choice == "memory" or not settings.bkash_token_cache_file:
        return None
    base = Path(settings.bkash_token_cache_file)
    cid = credential_id(creds)
    # One file per credential set: the configured name for the first, the id beside it for others.
    file = FileTokenStore(base if cid == credential_id(settings.bkash)
                          else base.with_name(f"{base.stem}-{cid}{base.suffix}"))
    if choice == "file":
        return file
    from providers.bkash_token_redis import RedisTokenStore

    lease = settings.bkash_token_lease_seconds or settings.bkash_timeout_seconds + 15
    seal = unseal = None
    keys = load_keys()
    if keys is not None:  # the token record at rest under the payload key (README)
        codec = AesGcmCodec(keys)

        def seal(data: bytes) -> bytes:
            return codec.encrypt(Payload(data=data)).SerializeToString()

        def unseal(data: bytes) -> bytes:
            return codec.decrypt(Payload.FromString(data)).data
    return RedisTokenStore(choice, cid, fallback=file, lease_seconds=lease, seal=seal,
                           unseal=unseal)


def bkash_client(settings: Settings, creds: BkashCredentials, http: httpx.AsyncClient,
                 paths: BkashPaths | None = None, *,
                 on_token_call: Callable[[str, str], None] | None = None) -> BkashClient:
    paths = paths or settings.bkash_paths
    tokens = TokenManager(http, creds, paths, timeout=settings.bkash_timeout_seconds,
                          refresh_after=settings.bkash_token_refresh_after_seconds,
                          budget_window=settings.bkash_token_budget_window_seconds,
                          store=token_store_for(settings, creds), on_call=on_token_call)
    return BkashClient(http, creds, paths, timeout=settings.bkash_timeout_seconds, tokens=tokens)


def describe_accounts(settings: Settings) -> str:
    """``default (bKash, Monetix project 1234), brand2 (bKash)``: ids and project ids only."""
    bkash, monetix = settings.bkash_by_account(), settings.monetix_by_account()
    parts = []
    for account in dict.fromkeys([*bkash, *monetix]):
        has = (["bKash"] if account in bkash else []) + (
            [f"Monetix project {monetix[account].project_id}"] if account in monetix else [])
        parts.append(f"{account} ({', '.join(has)})")
    return ", ".join(parts)


def build_activities(settings: Settings, http: httpx.AsyncClient, *,
                     meter: MetricMeter | None = None,
                     token_budgets: TokenBudgets | None = None) -> list:
    """The activity objects, each holding its provider clients: one per merchant account, each
    bKash client with its own token manager and token store (README "Several merchant accounts").
    ``meter``: where bKash token calls are counted (the worker's Runtime; README "Metrics");
    ``token_budgets``: the gauge of each account's token budget, fed by its token manager."""
    clients = {account: bkash_client(
        settings, a.credentials, http, a.paths,
        on_token_call=token_call_counter(meter, account, token_budgets) if meter else None)
        for account, a in settings.bkash_by_account().items()}
    if token_budgets is not None:
        for account, client in clients.items():
            token_budgets.watch(account, client.tokens)
    bkash = BkashActivities(clients, link_secret=settings.link_secret.get_secret_value().encode())
    acts = [bkash.create_payment, bkash.execute_payment, bkash.query_payment,
            bkash.capture_payment, bkash.void_payment, bkash.bkash_refund]
    timings = settings.notify_timings
    notify = NotificationActivities(
        http, settings.notify_endpoints,
        **{arg: timings[name] for arg, name in (
            ("budget", "PAYMENTS_NOTIFY_BUDGET_SECONDS"),
            ("first_retry", "PAYMENTS_NOTIFY_FIRST_RETRY_SECONDS"),
            ("max_retry_interval", "PAYMENTS_NOTIFY_MAX_RETRY_SECONDS")) if name in timings})
    acts += [notify.notification_plan, notify.deliver_notification]
    projects = settings.monetix_by_account()
    if projects:
        monetix = MonetixActivities(
            {account: MonetixGateClient(http, m.gate) for account, m in projects.items()},
            {account: m.payment_page for account, m in projects.items()})
        acts += [monetix.monetix_sale, monetix.monetix_clarification, monetix.monetix_status,
                 monetix.monetix_payment_page_link, monetix.monetix_refund,
                 monetix.monetix_refund_status]
    acts += reconciliation_activities(acts, report_dir=settings.reconciliation_dir)
    return acts


class ActivityFailureLog(logging.Filter):
    """The SDK logs every failed activity attempt with a full traceback, so a provider's expected
    fault (a 503, a lost answer, "still processing") looks like a crash. A typed ``ApplicationError``
    (what the activities raise for every provider outcome) becomes one line naming the payment, the
    operation, the attempt and the error; anything else is a bug and keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "__temporal_error_identifier", None) != "ActivityFailure" \
                or not record.exc_info:
            return True
        err = record.exc_info[1]
        info = getattr(record, "temporal_activity", None) or {}
        where = (f"payment {info.get('workflow_id', '?')}: {info.get('activity_type', '?')} "
                 f"attempt {info.get('attempt', '?')}")
        if isinstance(err, ApplicationError):
            kind = err.type or type(err).__name__
            final = " (not retryable)" if err.non_retryable else ""
            record.msg, record.args = "%s failed%s: %s: %s", (where, final, kind, err.message)
            record.exc_info = record.exc_text = None
        else:
            record.msg, record.args = "%s failed with an unexpected %s (a bug)", \
                (where, type(err).__name__)
        return True


def install_activity_failure_log() -> None:
    logger = logging.getLogger("temporalio.activity")
    if not any(isinstance(f, ActivityFailureLog) for f in logger.filters):
        logger.addFilter(ActivityFailureLog())


def build_worker(client: Client, task_queue: str, activities: list, **kwargs) -> Worker:
    install_activity_failure_log()
    # Monetix workflows are registered only where their activities are (a worker without Monetix
    # credentials must not pick up a Monetix purchase it cannot progress).
    names = {getattr(a, "__name__", "") for a in activities}
    workflows = [w for w in WORKFLOWS if w in ALWAYS or "monetix_sale" in names]
    # The refunds workflow reads the payment's outcome from Temporal itself; every workflow hands
    # its notifications to Temporal.
    activities = [*activities, PaymentRecords(client).load_refundable_payment,
                  NotificationPublisher(client).publish_notification]
    kwargs["interceptors"] = [PaymentsMetrics(), *kwargs.get("interceptors", ())]
    # A dead worker's cached payments wait this long on its sticky queue before any worker takes
    # them (the SDK's default is 10 s; issue 14 §2). Settings.sticky_timeout_seconds in main().
    kwargs.setdefault("sticky_queue_schedule_to_start_timeout", timedelta(seconds=3))
    # The sandbox shares the data-only contracts with the worker instead of re-importing them for
    # every workflow run (workflow_runner.py; docs/performance.md).
    kwargs.setdefault("workflow_runner", payments_workflow_runner())
    return Worker(client, task_queue=task_queue, workflows=workflows, activities=activities,
                  graceful_shutdown_timeout=timedelta(seconds=30), **kwargs)


@contextlib.asynccontextmanager
async def watching_stalled(client: Client, settings: Settings, meter: MetricMeter | None,
                           stop: asyncio.Event) -> AsyncIterator[None]:
    """With metrics on, the payments_stalled gauge is kept by a count every
    PAYMENTS_STALL_CHECK_SECONDS (merchant_client/stalled.py)."""
    if meter is None or not settings.stall_stages:
        yield
        return
    task = asyncio.create_task(watch_stalled(
        client, settings.stall_stages, timedelta(seconds=settings.stall_after_seconds),
        timedelta(seconds=settings.stall_check_seconds), stalled_gauge(meter), stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if unencrypted := plaintext_warning():  # (the embedded default makes a key; it never gets here)
        logging.warning(unencrypted)
    logging.info("merchant accounts: %s", describe_accounts(settings))
    bind = os.environ.get(METRICS_SETTING)
    runtime = prometheus_runtime(bind) if bind else None
    client = await connect_temporal(**({"runtime": runtime} if runtime else {}),
                                    interceptors=tracing_interceptors())
    if bind:
        logging.info("metrics on http://%s/metrics", bind)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    meter = runtime.metric_meter if runtime else None
    budgets = TokenBudgets(meter) if meter else None
    async with provider_http_client(settings.bkash_timeout_seconds) as http, (
            budgets.kept_current() if budgets else contextlib.nullcontext()):
        worker = build_worker(client, settings.task_queue,
                              build_activities(settings, http, meter=meter,
                                               token_budgets=budgets),
                              max_cached_workflows=settings.worker_cache_size,
                              sticky_queue_schedule_to_start_timeout=timedelta(
                                  seconds=settings.sticky_timeout_seconds))
        async with worker, watching_stalled(client, settings, meter, stop):
            logging.info("worker polling task queue %r; Ctrl-C to stop", settings.task_queue)
            await stop.wait()
            logging.info("shutting down: finishing in-flight activities (up to 30 s)")


if __name__ == "__main__":
    try:
        runtime_exit.run(main())
    except PaymentError as exc:  # Temporal unreachable, a wrong namespace: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
