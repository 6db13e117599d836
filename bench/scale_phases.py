"""The phases of ``--scale`` (bench/scale.py): park N payments where they rest for days, touch them
with another worker cache size, settle them in one burst, and check the sandboxes' ledgers.

Each path has a park and a settle step per kind, so that the payment workflows and the floor
(bench/floor.py) are driven the same way:

    bKash     park: start, the customer approves on bKash's page → AUTHORIZED (held)
              settle: the merchant's decision (3 of 4 delivered → CAPTURED, 1 of 4 failed → VOIDED)
    Monetix   park: start (instructions), the customer pays in bKash → AWAITING_TRANSACTION_ID
              settle: the transaction ID; Monetix's signed callbacks then complete it (SUCCESS)

A settle call returns when the workflow has taken the decision, not when the payment is final: the
final moment is the workflow's close time, read back from visibility, so thousands of payments can
be decided "as fast as the merchant client can" without one open long-poll each.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.floor import FloorAuthCapture, FloorGatePurchase, FloorRequest
from bench.paths import ACCOUNT, BKASH_AMOUNT, CUSTOMER, MONETIX_AMOUNT, Ctx, _authorized
from contracts.bkash import BkashPaymentRequest
from contracts.monetix import MonetixPurchaseRequest
from contracts.notifications import stream_id_for
from merchant_client import (
    payment_state,
    purchase_state,
    report_service_delivered,
    report_service_failed,
    start_gate_purchase,
    start_payment,
    submit_transaction_id,
)
from merchant_client.calls import attributes
from workflows import search_attributes as sa

# Hotels and travel hold for days: the transaction-ID window (the workflow's, and the sandbox's
# own deadline for it) is set past any run, so a purchase parked at the start of a long run is
# still waiting when the burst reaches it.
HOLD = timedelta(days=2)
PARK_TIMEOUT = 180.0
PAYMENT_TYPES = ("BkashAuthCapture", "MonetixGatePurchase")
FLOOR_TYPES = ("FloorAuthCapture", "FloorGatePurchase")
FINAL = {("bkash", "delivered"): "CAPTURED", ("bkash", "failed"): "VOIDED",
         ("monetix", "delivered"): "SUCCESS"}


@dataclass
class Held:
    kind: str              # bkash | monetix
    key: str               # invoice number / Monetix payment_id / floor key
    workflow_id: str
    decision: str = "delivered"
    trx: str = ""          # the bKash transaction ID the Monetix customer will type
    sent_at: float = 0.0   # wall clock, when the settle call was first sent
    error: str = ""


def plan(n: int, tag: str) -> list[tuple[str, str, str]]:
    """N bKash payments and N/4 Monetix purchases, interleaved as they would arrive; every fourth
    bKash payment's service fails (voided)."""
    out = []
    for i in range(n):
        out.append(("bkash", f"SCALE-{tag}-B{i}", "failed" if i % 4 == 3 else "delivered"))
        if i % 4 == 3:
            out.append(("monetix", f"SCALE-{tag}-M{i // 4}", "delivered"))
    return out


# -- park and settle, per path and kind --------------------------------------------------------

async def park_bkash(ctx: Ctx, key: str) -> Held:
    req = BkashPaymentRequest(invoice_number=key, amount_poisha=BKASH_AMOUNT,
                              callback_base_url=ctx.endpoint_url)
    url = await start_payment(ctx.client, req, task_queue=ctx.task_queue)
    journey = await ctx.customer.approve(url.bkash_url)
    if not _authorized(journey):
        raise RuntimeError(f"{key}: not authorized after the customer approved")
    return Held("bkash", key, req.workflow_id)


async def park_monetix(ctx: Ctx, key: str) -> Held:
    req = MonetixPurchaseRequest(
        sale={"payment_id": key, "amount_poisha": MONETIX_AMOUNT, "customer": CUSTOMER,
              "account_number": ACCOUNT}, callback_base_url=ctx.endpoint_url,
        transaction_id_window=HOLD)
    shown = await start_gate_purchase(ctx.client, req, task_queue=ctx.task_queue)
    if not shown.display_data:
        raise RuntimeError(f"{key}: no payment instructions ({shown.stage.value})")
    trx = await ctx.monetix_customer.pay_in_bkash(key)
    return Held("monetix", key, req.workflow_id, trx=trx)


async def settle_payment(ctx: Ctx, held: Held) -> None:
    if held.kind == "monetix":
        await submit_transaction_id(ctx.client, held.key, held.trx)
    elif held.decision == "failed":
        await report_service_failed(ctx.client, held.key, "scale bench: service not delivered")
    else:
        await report_service_delivered(ctx.client, held.key)


def _floor_op(ctx: Ctx, workflow, key: str, kind: str, stage: str) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        workflow.run, FloorRequest(key=key, amount_poisha=BKASH_AMOUNT if kind == "bkash"
                                   else MONETIX_AMOUNT, second_window=HOLD),
        id=f"floor-{kind}-{key}", task_queue=ctx.floor_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=attributes(PAYMENT_PROVIDER="bench-floor", MERCHANT_INVOICE=key,
                                     PAYMENT_STAGE=stage),
        static_summary=f"floor: {kind} · {key}")


async def park_floor_bkash(ctx: Ctx, key: str) -> Held:
    op = _floor_op(ctx, FloorAuthCapture, key, "bkash", "CREATING")
    await ctx.client.execute_update_with_start_workflow(FloorAuthCapture.approval_url,
                                                        start_workflow_operation=op)
    handle = await op.workflow_handle()
    await handle.execute_update(FloorAuthCapture.customer_returned, id=f"return-{key}")
    return Held("bkash", key, handle.id)


async def park_floor_monetix(ctx: Ctx, key: str) -> Held:
    op = _floor_op(ctx, FloorGatePurchase, key, "monetix", "SALE")
    shown = await ctx.client.start_update_with_start_workflow(
        FloorGatePurchase.payment_instructions, start_workflow_operation=op,
        wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    handle = await op.workflow_handle()
    await handle.execute_update(FloorGatePurchase.provider_callback, False,
                                id="callback-instructions")
    await shown.result()
    return Held("monetix", key, handle.id)


async def settle_floor(ctx: Ctx, held: Held) -> None:
    handle = ctx.client.get_workflow_handle(held.workflow_id)
    if held.kind == "bkash":
        # The floor has one decision; its void would cost what its capture costs (one no-op).
        await handle.execute_update(FloorAuthCapture.service_delivered, id="service_delivered")
        return
    await handle.execute_update(FloorGatePurchase.submit_transaction_id, id="transaction-id")
    # The final callback, which the sandbox sends to the endpoint on the payment path.
    await handle.execute_update(FloorGatePurchase.provider_callback, True, id="callback-final")


PARK = {("workflow", "bkash"): park_bkash, ("workflow", "monetix"): park_monetix,
        ("floor", "bkash"): park_floor_bkash, ("floor", "monetix"): park_floor_monetix}
SETTLE = {"workflow": settle_payment, "floor": settle_floor}


# -- driving many at once ----------------------------------------------------------------------

class Progress:
    """How many items a phase has finished, read by the RSS sampler."""

    def __init__(self) -> None:
        self.phase = "idle"
        self.done = 0

    def begin(self, phase: str) -> None:
        self.phase, self.done = phase, 0


async def park_all(ctx: Ctx, path: str, items: list[tuple[str, str, str]], concurrency: int,
                   progress: Progress) -> tuple[list[Held], list[str]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(kind: str, key: str, decision: str) -> Held | str:
        async with gate:
            try:
                held = await asyncio.wait_for(PARK[(path, kind)](ctx, key), PARK_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a payment that did not park is reported
                return f"{key}: {type(exc).__name__}: {exc}"
            held.decision = decision
            progress.done += 1
            return held

    out = await asyncio.gather(*(one(*item) for item in items))
    return [h for h in out if isinstance(h, Held)], [e for e in out if isinstance(e, str)]


async def touch_all(ctx: Ctx, held: list[Held], concurrency: int, progress: Progress) -> list[str]:
    """Query every parked payment once: the worker replays each history into its cache (a query
    on a workflow it does not hold is answered from a replay), as a decision would."""
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(h: Held) -> None:
        async with gate:
            try:
                if h.kind == "bkash":
                    await payment_state(ctx.client, h.key)
                else:
                    await purchase_state(ctx.client, h.key)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{h.key}: {type(exc).__name__}: {exc}")
            progress.done += 1

    await asyncio.gather(*(one(h) for h in held))
    return errors


async def settle_all(ctx: Ctx, path: str, held: list[Held], concurrency: int, progress: Progress,
                     on_half: Callable[[], Awaitable[None]] | None) -> None:
    """Every decision / transaction ID, ``concurrency`` calls in flight; ``on_half`` (the kill)
    runs once half of them have been taken. A call that fails while the worker is down is sent
    again with the same update id (absorbed if the first one got through), as merchant code would."""
    gate = asyncio.Semaphore(concurrency)
    half = len(held) // 2
    killer: list[asyncio.Task] = []

    async def one(h: Held) -> None:
        async with gate:
            h.sent_at = time.time()
            h.error = await _with_retries(ctx, h, lambda: SETTLE[path](ctx, h))
            progress.done += 1
            if on_half and progress.done == max(half, 1) and not killer:
                killer.append(asyncio.create_task(on_half()))

    await asyncio.gather(*(one(h) for h in held))
    for task in killer:
        await task


async def _with_retries(ctx: Ctx, h: Held, call: Callable[[], Awaitable[None]],
                        attempts: int = 30) -> str:
    last = ""
    for attempt in range(attempts):
        try:
            await call()
            return ""
        except Exception as exc:  # noqa: BLE001
            last = f"{type(exc).__name__}: {exc}"
        # A payment that ended meanwhile took the first call (its update id was absorbed).
        with contextlib.suppress(Exception):
            if (await ctx.client.get_workflow_handle(h.workflow_id).describe()).close_time:
                return ""
        await asyncio.sleep(min(5.0, 0.5 * 2 ** attempt))
    return last


# -- reading the outcome back ------------------------------------------------------------------

def closed_query(task_queue: str, types: tuple[str, ...], running: bool = False) -> str:
    names = ", ".join(f"'{t}'" for t in types)
    status = "ExecutionStatus = 'Running'" if running else "ExecutionStatus != 'Running'"
    return f"TaskQueue = '{task_queue}' AND WorkflowType IN ({names}) AND {status}"


async def count(ctx: Ctx, query: str) -> int:
    return (await ctx.client.count_workflows(query)).count


async def wait_count(ctx: Ctx, query: str, expected: int, progress: Progress,
                     stall_seconds: float = 300.0) -> int:
    """Wait until ``expected`` workflows match ``query`` (or nothing more matched for
    ``stall_seconds``); the count."""
    last, changed = -1, time.monotonic()
    while True:
        closed = await count(ctx, query)
        progress.done = closed
        if closed >= expected:
            return closed
        if closed != last:
            last, changed = closed, time.monotonic()
        elif time.monotonic() - changed > stall_seconds:
            return closed
        await asyncio.sleep(1.0)


async def wait_closed(ctx: Ctx, query: str, expected: int, progress: Progress,
                      stall_seconds: float = 300.0) -> dict[str, tuple[float, str, str]]:
    """``wait_count``, then {workflow id: (close time, status, PaymentStage)}."""
    await wait_count(ctx, query, expected, progress, stall_seconds)
    out = {}
    async for wf in ctx.client.list_workflows(query, page_size=1000):
        stage = wf.typed_search_attributes.get(sa.PAYMENT_STAGE) or ""
        out[wf.id] = (wf.close_time.timestamp() if wf.close_time else float("nan"),
                      wf.status.name if wf.status else "?", stage)
    return out


async def history_sample(ctx: Ctx, held: list[Held], per_kind: int, streams: bool) -> dict:
    """Events and bytes (protobuf, payloads encrypted as stored) of a few payments per kind, and of
    their notification streams."""
    out: dict = {}
    for kind in ("bkash", "monetix"):
        picks = [h for h in held if h.kind == kind][:per_kind]
        if not picks:
            continue
        rows = await asyncio.gather(*(_history_size(ctx, h.workflow_id) for h in picks))
        entry = {"sampled": len(rows), "events": _mean(r[0] for r in rows),
                 "bytes": _mean(r[1] for r in rows)}
        if streams:
            srows = await asyncio.gather(*(_history_size(ctx, stream_id_for(h.workflow_id))
                                           for h in picks))
            entry["stream_events"] = _mean(r[0] for r in srows)
            entry["stream_bytes"] = _mean(r[1] for r in srows)
        out[kind] = entry
    return out


async def _history_size(ctx: Ctx, workflow_id: str) -> tuple[int, int]:
    try:
        history = await ctx.client.get_workflow_handle(workflow_id).fetch_history()
    except Exception:  # noqa: BLE001 - e.g. a stream not started: counted as empty
        return 0, 0
    events = list(history.events)
    return len(events), sum(e.ByteSize() for e in events)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


# -- the sandboxes' ledgers ---------------------------------------------------------------------

async def ledger_check(ctx: Ctx, held: list[Held], closed: dict[str, tuple]) -> dict:
    """Every payment's money movements, from the sandboxes' ledgers: exactly one authorization and
    one capture or one void (bKash), one customer transfer and one settlement (Monetix), and the
    workflow's own final stage agreeing."""
    seen = Counter()
    by_invoice: dict[str, Counter] = {}
    for entry in await ctx.bkash_admin.ledger():
        by_invoice.setdefault(entry["merchant_invoice"], Counter())[entry["kind"]] += 1
    by_payment: dict[str, Counter] = {}
    for entry in await ctx.monetix_admin.ledger():
        by_payment.setdefault(entry["payment_id"], Counter())[entry["kind"]] += 1
    violations = []
    for h in held:
        kinds = (by_invoice if h.kind == "bkash" else by_payment).get(h.key, Counter())
        want = {("bkash", "delivered"): {"AUTHORIZE": 1, "CAPTURE": 1},
                ("bkash", "failed"): {"AUTHORIZE": 1, "VOID": 1},
                ("monetix", "delivered"): {"CUSTOMER_PAID": 1, "SETTLED": 1}}[(h.kind, h.decision)]
        seen["+".join(f"{k}×{v}" if v > 1 else k for k, v in sorted(kinds.items())) or "none"] += 1
        stage = closed.get(h.workflow_id, (0, "", "not closed"))[2]
        if dict(kinds) != want or stage != FINAL[(h.kind, h.decision)]:
            violations.append(f"{h.key}: ledger {dict(kinds)}, workflow {stage}, "
                              f"expected {want} and {FINAL[(h.kind, h.decision)]}")
    return {"payments": len(held), "exactly_once": len(held) - len(violations),
            "ledger_kinds": dict(seen), "violations": violations[:20],
            "violation_count": len(violations)}


# -- the dev server's database ------------------------------------------------------------------

def db_size(db_file: str | None) -> dict:
    """On disk: the SQLite file and its write-ahead log; logical: the pages in use as SQLite itself
    counts them (the log's frames included), which does not jump when the log is checkpointed."""
    if not db_file:
        return {"disk": 0, "logical": 0}
    disk = sum(Path(p).stat().st_size for p in (db_file, db_file + "-wal") if Path(p).exists())
    logical = 0
    with contextlib.suppress(sqlite3.Error):
        con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
        try:
            page = con.execute("PRAGMA page_size").fetchone()[0]
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            free = con.execute("PRAGMA freelist_count").fetchone()[0]
            logical = (pages - free) * page
        finally:
            con.close()
    return {"disk": disk, "logical": logical}
