"""ReconciliationRun and ReconciliationBatch: one window's payments and refunds checked against the
providers, on a Temporal Schedule (README "Reconciliation").

The run lists the window's items page by page (closed payments, refund ledgers, running payments)
and hands each page to a ReconciliationBatch child, a few at a time; each batch checks its items in
one activity paced to its share of the run's provider call rate. After ``batches_per_run`` batches
the run continues as new, carrying its findings, so no history grows past a few thousand events
however many payments a window holds.

Re-runs. A window's workflow id is ``reconcile:<start>..<end>``: a start while a run of it is going
joins that run; a start after it ended is a re-run. A re-run checks everything again and writes the
same report when nothing changed, but notifies only the divergences the previous run of the window
did not report (read back from that run's result in Temporal, so any worker host finds it). We do
not make a re-run a no-op returning the stored report: the point of running a window again is to see
whether what was found is still there, and a provider that changed its mind since would otherwise
go unnoticed. Each batch that has something new to tell emits from its own workflow
(``<window id>/<run tag>/batch-<n>``, the tag from the run's first run id), so the events of two
runs of a window never share an event id (a stream drops one it already holds) nor a stream.

A scheduled fire carries no window: it reconciles the window that ended ``lag`` before its
scheduled time, by starting that window's run as its child, so a scheduled run, a catch-up and a
manual run of one window are the same workflow id and cannot run twice at once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

from contracts.common import Provider
from contracts.notifications import EventType
from contracts.reconciliation import (
    BATCH_WORKFLOW,
    RUN_WORKFLOW,
    BatchInput,
    BatchResult,
    ItemRef,
    Page,
    PageRequest,
    ReconciliationActivity,
    ReconciliationInput,
    ReconciliationReport,
    ReportFiles,
    RunProgress,
    Source,
    Unchecked,
    Window,
    business_key_of,
    key_source,
    window_ending,
)
from workflows import search_attributes as sa
from workflows.notifications import Notifier

# Temporal's own: the time a schedule meant to start this run (a catch-up runs late, same value).
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
# Reads of Temporal itself and the report files: retried until they work (nothing is sent).
TEMPORAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                             maximum_interval=timedelta(minutes=1), maximum_attempts=0)
# The providers' checks are read-only, so retrying is always safe; a provider down for hours ends
# the batch's budget and its items are reported unchecked rather than holding the run forever.
CHECK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=5), maximum_attempts=0)
CHECK_BUDGET = timedelta(hours=6)
# One item: a token call, two provider calls at their 30 s timeout, Monetix's 10 s wait.
ITEM_HEARTBEAT = timedelta(minutes=3)
_NEXT_SOURCE = {Source.CLOSED_PAYMENTS: Source.REFUND_LEDGERS,
                Source.REFUND_LEDGERS: Source.RUNNING_PAYMENTS, Source.RUNNING_PAYMENTS: None}


@workflow.defn(name=RUN_WORKFLOW)
class ReconciliationRun:
    @workflow.init
    def __init__(self, inp: ReconciliationInput) -> None:
        self._inp = inp
        self._progress = inp.progress or RunProgress()
        self._started_here = 0

    @workflow.run
    async def run(self, inp: ReconciliationInput) -> ReconciliationReport:
        if inp.window is None:
            return await self._scheduled_window(inp)
        window = inp.window
        if inp.progress is None:
            previous = await workflow.execute_activity(
                ReconciliationActivity.PREVIOUS_REPORT, workflow.info().workflow_id,
                result_type=ReconciliationReport | None, retry_policy=TEMPORAL_RETRY,
                start_to_close_timeout=timedelta(minutes=1),
                summary="the previous run's report of this window")
            self._progress.previous_keys = [d.key for d in previous.divergences] if previous \
                else []
        await self._check_window(window)
        self._show(window)
        self._upsert_count()
        if self._progress.source is not None:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(inp.model_copy(update={"progress": self._progress}))
        report = self._report(window)
        files = await workflow.execute_activity(
            ReconciliationActivity.WRITE_REPORT, report, result_type=ReportFiles,
            retry_policy=TEMPORAL_RETRY, start_to_close_timeout=timedelta(minutes=1),
            summary="write the JSON and CSV report")
        report.json_path, report.csv_path = files.json_path, files.csv_path
        await workflow.wait_condition(workflow.all_handlers_finished)
        return report

    # -- the window ----------------------------------------------------------------------------

    async def _check_window(self, window: Window) -> None:
        """List page after page and check each in a batch, at most ``parallel_batches`` at once,
        until everything is listed or this run has started its share of batches."""
        progress, options = self._progress, self._inp.options
        running: list[asyncio.Task[BatchResult]] = []  # a list: its order is replayed exactly
        while True:
            while (progress.source is not None and len(running) < options.parallel_batches
                   and self._started_here < options.batches_per_run):
                refs = await self._next_page(window)
                if refs:
                    running.append(asyncio.create_task(self._batch(window, refs)))
            if not running:
                return
            await workflow.wait_condition(lambda: any(t.done() for t in running))
            for task in [t for t in running if t.done()]:
                running.remove(task)
                self._collect(task.result())
            self._show(window)

    async def _next_page(self, window: Window) -> list[ItemRef]:
        progress, options = self._progress, self._inp.options
        assert progress.source is not None
        page = await workflow.execute_activity(
            ReconciliationActivity.LIST_PAGE,
            PageRequest(window=window, source=progress.source, page_token=progress.page_token,
                        page_size=options.batch_size, overdue_grace=options.overdue_grace),
            result_type=Page, retry_policy=TEMPORAL_RETRY,
            start_to_close_timeout=timedelta(minutes=1),
            summary=f"list {progress.source.value} (page after batch {progress.batches})")
        if page.next_token:
            progress.page_token = page.next_token
        else:
            progress.source, progress.page_token = _NEXT_SOURCE[progress.source], None
        return page.refs

    async def _batch(self, window: Window, refs: list[ItemRef]) -> BatchResult:
        self._progress.batches += 1
        self._started_here += 1
        number = self._progress.batches
        ids = {r.workflow_id for r in refs}
        already = [k for k in self._progress.previous_keys if key_source(k) in ids]
        # From the window, not workflow.info(): a batch's id is a command, and the same window's
        # run replays to the same ids whatever the id it was started under (or replayed with).
        tag = workflow.info().first_execution_run_id[:8]
        try:
            return await workflow.execute_child_workflow(
                BATCH_WORKFLOW,
                BatchInput(window=window, number=number, refs=refs,
                           options=self._inp.options.for_batch(), already_reported=already),
                id=f"{window.workflow_id}/{tag}/batch-{number}",
                result_type=BatchResult,
                static_summary=f"reconcile {len(refs)} items of {window.label} (batch {number})")
        except ChildWorkflowError as err:
            # Its checks ran out of budget (a provider down for hours): the items are named as
            # unchecked in the report, and the rest of the window goes on.
            why = f"batch {number} failed: {err.cause or err}"
            return BatchResult(unchecked=[Unchecked(source=r.workflow_id, reason=why)
                                          for r in refs])

    def _collect(self, result: BatchResult) -> None:
        progress, limit = self._progress, self._inp.options.max_listed_divergences
        progress.checked = progress.checked.plus(result.checked)
        progress.notified += result.notified
        progress.provider_calls += result.provider_calls
        progress.unchecked = (progress.unchecked + result.unchecked)[:limit]
        seen = {d.key for d in progress.divergences}
        for d in result.divergences:
            if d.key in seen:
                continue  # a ledger listed twice (it closed between two pages)
            seen.add(d.key)
            if len(progress.divergences) < limit:
                progress.divergences.append(d)
            else:
                progress.unlisted += 1

    def _report(self, window: Window) -> ReconciliationReport:
        p = self._progress
        divergences = sorted(p.divergences, key=lambda d: (d.kind.value, d.payment_key,
                                                           d.refund_id or "", d.source))
        return ReconciliationReport(
            window=window, workflow_id=workflow.info().workflow_id, checked=p.checked,
            divergence_count=len(divergences) + p.unlisted, divergences=divergences,
            unchecked=sorted(p.unchecked, key=lambda u: u.source), unlisted=p.unlisted,
            notified=p.notified, provider_calls=p.provider_calls)

    # -- a scheduled fire ------------------------------------------------------------------------

    async def _scheduled_window(self, inp: ReconciliationInput) -> ReconciliationReport:
        info = workflow.info()
        at = info.typed_search_attributes.get(SCHEDULED_START) or info.workflow_start_time
        window = window_ending(at - inp.lag, inp.window_length)
        workflow.set_current_details(f"scheduled run of **{window.label}**: see {window.workflow_id}")
        try:
            report = await workflow.execute_child_workflow(
                RUN_WORKFLOW, inp.model_copy(update={"window": window}), id=window.workflow_id,
                result_type=ReconciliationReport,
                static_summary=f"reconcile {window.label}")
        except WorkflowAlreadyStartedError:
            raise ApplicationError(
                f"window {window.label} is being reconciled already ({window.workflow_id}, a "
                "manual run?); its report will be the window's", non_retryable=True) from None
        workflow.upsert_search_attributes(
            [sa.RECONCILIATION_DIVERGENCES.value_set(report.divergence_count)])
        return report

    # -- the Web UI ----------------------------------------------------------------------------

    def _upsert_count(self) -> None:
        p = self._progress
        workflow.upsert_search_attributes(
            [sa.RECONCILIATION_DIVERGENCES.value_set(len(p.divergences) + p.unlisted)])

    def _show(self, window: Window) -> None:
        p = self._progress
        c = p.checked
        workflow.set_current_details(
            f"**{len(p.divergences) + p.unlisted} divergences** in {window.label} · "
            f"{p.batches} batches · checked {c.bkash_payments} bKash and {c.monetix_payments} "
            f"Monetix payments, {c.refunds} refunds, {c.running} running · {c.skipped} skipped · "
            f"{len(p.unchecked)} unchecked · listing "
            f"{p.source.value if p.source else 'done'}")


@workflow.defn(name=BATCH_WORKFLOW)
class ReconciliationBatch:
    @workflow.init
    def __init__(self, inp: BatchInput) -> None:
        # Each event names its own payment and provider; the stream is this batch's.
        self._notes = Notifier(provider=Provider.BKASH)

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchResult:
        # Every item may need a couple of paced calls; a slow provider is the heartbeat's concern.
        per_item = timedelta(seconds=3 / inp.options.calls_per_second) + timedelta(seconds=2)
        result = await workflow.execute_activity(
            ReconciliationActivity.CHECK_BATCH, inp, result_type=BatchResult,
            start_to_close_timeout=per_item * len(inp.refs) + inp.options.monetix_status_delay
            + ITEM_HEARTBEAT,
            schedule_to_close_timeout=CHECK_BUDGET, heartbeat_timeout=ITEM_HEARTBEAT,
            retry_policy=CHECK_RETRY, summary=f"check {len(inp.refs)} items with the providers")
        already = set(inp.already_reported)
        for d in result.divergences:
            if d.key in already:
                continue  # the previous run of this window told the merchant already
            self._notes.emit(
                EventType.RECONCILIATION_DIVERGENCE, stage=d.stage, payment_key=d.payment_key,
                provider=d.provider, account_id=d.account_id,
                invoice_number=business_key_of(d.payment_key)
                if d.provider is Provider.BKASH else None,
                amount_poisha=d.amount_poisha, provider_payment_id=d.provider_payment_id,
                trx_id=d.trx_id, refund_id=d.refund_id, detail=d.detail,
                divergence={"kind": d.kind.value, "project": d.project,
                            "provider": d.provider_says, "window": inp.window.label})
            result.notified += 1
        await self._notes.close()
        return result
