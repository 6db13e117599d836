"""Payments stalled in a stage that should last seconds: the ``payments_stalled`` gauge and
``starter.py list --stalled``.

A capture or a void is retried by Temporal until bKash answers (the seed: "retried until they
succeed"), a refund until the provider settles it: a payment resting in CAPTURING, VOIDING or a
refunds ledger in REFUNDING for many minutes means bKash or Monetix keeps refusing, or no worker
runs. Nothing else shows it — the workflow is Running, as it is while a customer takes their
time. The stage's time is the ``PaymentStageSince`` search attribute (set with the stage), so the
count is one visibility query per stage: no payment is read, no label holds a payment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from temporalio.client import Client
from temporalio.service import RPCError

from contracts.bkash import BkashStage
from contracts.common import SearchAttribute
from contracts.monetix import MonetixStage
from contracts.refunds import LedgerStage
from merchant_client.calls import KEYS
from merchant_client.connection import PaymentError, explain_rpc_error

log = logging.getLogger(__name__)

# Stages a workflow rests in (its PaymentStage upserted) that only a provider or a worker ends.
DEFAULT_STAGES = (BkashStage.CAPTURING.value, BkashStage.VOIDING.value,
                  LedgerStage.REFUNDING.value)
# Every stage one may watch: the resting, non-final stages of each workflow.
WATCHABLE_STAGES = frozenset(
    [s.value for s in BkashStage if not s.is_final and s not in (BkashStage.CREATING,
                                                                 BkashStage.EXECUTING)]
    + [s.value for s in MonetixStage if not s.is_final]
    + [LedgerStage.REFUNDABLE.value, LedgerStage.REFUNDING.value])


def stalled_query(stage: str, older_than: timedelta, now: datetime | None = None) -> str:
    """The visibility query of the running workflows resting in ``stage`` since before
    ``now - older_than`` (the Web UI's search box takes it as it is)."""
    cutoff = ((now or datetime.now(timezone.utc)) - older_than).astimezone(timezone.utc)
    return (f'ExecutionStatus="Running" AND {SearchAttribute.PAYMENT_STAGE.value}="{stage}" '
            f'AND {SearchAttribute.PAYMENT_STAGE_SINCE.value} < '
            f'"{cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}"')


def check_stages(stages: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(s.strip().upper() for s in stages)
    unknown = [s for s in wanted if s not in WATCHABLE_STAGES]
    if unknown:
        raise PaymentError(f"--stage {', '.join(unknown)}: not a stage a payment or refunds "
                           f"ledger rests in; use some of {', '.join(sorted(WATCHABLE_STAGES))}")
    return wanted


async def count_stalled(client: Client, stages: Iterable[str],
                        older_than: timedelta) -> dict[str, int]:
    """How many running workflows rest in each stage for longer than ``older_than``."""
    now = datetime.now(timezone.utc)
    counts = {}
    try:
        for stage in check_stages(stages):
            counts[stage] = (await client.count_workflows(
                stalled_query(stage, older_than, now))).count
    except RPCError as err:
        raise explain_rpc_error(err, "payments", client) or err from None
    return counts


async def list_stalled(client: Client, stages: Iterable[str],
                       older_than: timedelta) -> list[dict]:
    """The stalled workflows themselves (workflow id, stage, since when): what to look at."""
    now = datetime.now(timezone.utc)
    rows = []
    try:
        for stage in check_stages(stages):
            async for wf in client.list_workflows(stalled_query(stage, older_than, now)):
                since = wf.typed_search_attributes.get(KEYS[SearchAttribute.PAYMENT_STAGE_SINCE])
                rows.append({"workflow_id": wf.id, "stage": stage,
                             "since": since.isoformat() if since else None})
    except RPCError as err:
        raise explain_rpc_error(err, "payments", client) or err from None
    return rows


async def watch_stalled(client: Client, stages: Iterable[str], older_than: timedelta,
                        every: timedelta, record: Callable[[str, int], None],
                        stop: asyncio.Event) -> None:
    """Until ``stop``: count the stalled workflows every ``every`` and ``record(stage, n)`` each.
    A failed count (Temporal unavailable) is logged once until a count succeeds again; the gauge
    keeps its last value meanwhile (the SDK's own metrics show the outage)."""
    stages = check_stages(stages)
    failing = False
    while not stop.is_set():
        try:
            for stage, n in (await count_stalled(client, stages, older_than)).items():
                record(stage, n)
            if failing:
                log.info("stalled-payment count works again")
            failing = False
        except (RPCError, PaymentError) as err:
            if not failing:
                log.warning("cannot count stalled payments: %s", str(err).splitlines()[0][:200])
            failing = True
        try:
            await asyncio.wait_for(stop.wait(), every.total_seconds())
        except asyncio.TimeoutError:
            pass
