"""Billable actions of the refund paths, counted like the payment paths (bench/actions.py) from the
fetched history of each payment's refunds ledger (``PaymentRefunds``), plus what the client does
that leaves no event (queries, rejected updates).

Each path first pays (a bKash payment of 1000.00 captured, or a Monetix Gate purchase of 1000.00),
then refunds through the merchant client exactly as merchant code does (``refund(...)``: update-with-
start of the ledger, then the update that waits for the refund's end). The ledgers get a refund
window of a few seconds, so that each one closes (WINDOW_CLOSED) and its whole lifecycle is counted;
with the default window (15 days for bKash) the ledger stays open that long and closes the same way.
The payment's own actions are the payment paths' rows.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

from bench.actions import ClientCounter, figures
from bench.paths import Ctx, bkash_workflow, monetix_workflow
from contracts.common import Provider
from contracts.refunds import (
    LedgerStage,
    RefundRequest,
    RefundsInput,
    RefundsState,
    RefundStage,
    refunds_workflow_id,
)
from merchant_client import payment_result, refund

CAPTURED = 100000  # 1000.00 BDT, for the bKash paths (the Monetix purchase is 1000.00 too)
WINDOW = timedelta(seconds=5)
CLOSE_TIMEOUT = 120.0

# name, provider, refunds (poisha), fault ("lost": bKash applies the first refund, its answer is lost)
REFUND_PATHS = [
    ("bKash refund: one partial refund (300.00 of 1000.00)", Provider.BKASH, [30000], None),
    ("bKash refund: two refunds (300.00, then 200.00)", Provider.BKASH, [30000, 20000], None),
    ("bKash refund: answer lost → resolved by refund status", Provider.BKASH, [25000], "lost"),
    ("Monetix refund: 300.00 by callback", Provider.MONETIX, [30000], None),
]


async def _pay(ctx: Ctx, provider: Provider, key: str) -> tuple[str, str | None]:
    """A captured / successful payment: (its key, the bKash paymentID)."""
    if provider is Provider.BKASH:
        sample = await bkash_workflow(ctx, key, amount_poisha=CAPTURED)
        invoice = f"BENCH-{key}"
        if not sample.ok:
            raise RuntimeError(f"payment {invoice} ended {sample.detail}, not CAPTURED")
        return invoice, (await payment_result(ctx.client, invoice)).payment_id
    sample = await monetix_workflow(ctx, key)
    if not sample.ok:
        raise RuntimeError(f"purchase BENCH-{key} ended {sample.detail}, not SUCCESS")
    return f"BENCH-{key}", None


async def _refund_lines(ctx: Ctx, provider: Provider, key: str, payment_id: str | None) -> int:
    if provider is Provider.BKASH and ctx.bkash_admin is not None:
        return sum(e["kind"] == "REFUND" for e in await ctx.bkash_admin.ledger(payment_id=payment_id))
    if provider is Provider.MONETIX and ctx.monetix_admin is not None:
        return sum(e["kind"] == "REFUND" for e in await ctx.monetix_admin.ledger(payment_id=key))
    return -1  # no admin API given: not checked


async def count_refund_paths(ctx: Ctx, counter: ClientCounter, tag: str,
                             save_dir: Path | None = None) -> list[dict]:
    """One run per refund path; the client's own counts are taken around the refunds only."""
    runs = []
    for i, (name, provider, amounts, fault) in enumerate(REFUND_PATHS):
        key, payment_id = await _pay(ctx, provider, f"{tag}-refunds-{i}")
        if fault == "lost":
            assert ctx.bkash_admin is not None and payment_id
            await ctx.bkash_admin.lose_refund_answer(payment_id, "drop_connection")
        ledger = RefundsInput(provider=provider, payment_key=key, bkash_window=WINDOW,
                              monetix_window=WINDOW, callback_base_url=ctx.endpoint_url)
        before = Counter(counter.counts)
        records = []
        for n, amount in enumerate(amounts, 1):
            req = RefundRequest(provider=provider, payment_key=key, refund_id=f"{key}-RF{n}",
                                amount_poisha=amount, reason="bench refund",
                                sku="room" if provider is Provider.BKASH else None)
            records.append(await refund(ctx.client, req, task_queue=ctx.task_queue, ledger=ledger))
        client_counts = Counter(counter.counts)
        client_counts.subtract(before)
        runs.append((name, provider, key, payment_id, amounts, records, +client_counts))
    # Every ledger closes when its window ends; count each whole history then.
    states = await asyncio.gather(*(asyncio.wait_for(
        ctx.client.get_workflow_handle(refunds_workflow_id(provider, key),
                                       result_type=RefundsState).result(), CLOSE_TIMEOUT)
        for _, provider, key, *_ in runs))
    out = []
    for i, ((name, provider, key, payment_id, amounts, records, client_counts), state) in \
            enumerate(zip(runs, states)):
        fault = REFUND_PATHS[i][3]
        workflow_id = refunds_workflow_id(provider, key)
        history = await ctx.client.get_workflow_handle(workflow_id).fetch_history()
        if save_dir:
            (save_dir / f"refund-actions-{i}.json").write_text(history.to_json())
        fig = figures(history)
        actions = dict(fig.actions)
        actions.update(client_counts)
        lines = await _refund_lines(ctx, provider, key, payment_id)
        succeeded = all(r.stage is RefundStage.SUCCEEDED for r in records)
        final = (f"{len(records)}× {records[-1].stage.value}, {state.stage.value}"
                 if succeeded else "; ".join(f"{r.stage.value} {r.detail}" for r in records))
        expected = f"{len(amounts)}× SUCCEEDED, {LedgerStage.WINDOW_CLOSED.value}"
        reconciled = sum(r.reconciled for r in records)
        ok = final == expected and state.refunded_poisha == sum(amounts) \
            and lines in (-1, len(amounts)) and (fault != "lost" or reconciled == 1)
        out.append({"path": name, "expected": expected, "final": final, "ok": ok,
                    "workflow_id": workflow_id, "refunds": len(amounts),
                    "reconciled": reconciled,
                    "refund_lines_at_provider": lines, "events": fig.events, "actions": actions,
                    "total_actions": sum(actions.values())})
    return out
