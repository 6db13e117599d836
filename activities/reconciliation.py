"""Reconciliation activities (README "Reconciliation"): list a window's items from Temporal's
visibility, check a batch of them against the providers (activities.reconciliation_checks), read the
previous run's report back from Temporal, and write the report files.

What the project recorded is read from Temporal itself, as activities.payments does for refunds:
each payment's own workflow result, each ledger's state, each running payment's input. Provider
calls reuse the worker's per-account clients, so the bKash token (two grant/refresh calls an hour)
is the payments' own, never a second one.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.accounts import AccountClients
from activities.reconciliation_checks import Checks, Pacer
from contracts.bkash import WORKFLOW as BKASH_WORKFLOW
from contracts.bkash import BkashPaymentResult
from contracts.common import SearchAttribute
from contracts.monetix import MonetixPurchaseResult
from contracts.reconciliation import (
    DEFAULT_REPORT_DIR,
    LEDGER_WORKFLOW,
    PAYMENT_WORKFLOWS,
    REPORT_COLUMNS,
    REPORT_DIR_SETTING,
    RUN_WORKFLOW,
    BatchInput,
    BatchResult,
    Divergence,
    DivergenceKind,
    ItemKind,
    ItemRef,
    Page,
    PageRequest,
    ReconciliationActivity,
    ReconciliationReport,
    ReportFiles,
    Source,
    Unchecked,
    account_of,
    duration_text,
    iso,
    payment_deadline,
    provider_of,
    request_type,
)
from contracts.refunds import RefundOp, RefundsState
from providers.bkash import BkashClient
from providers.bkash_errors import (
    BkashError,
    BkashNoResponse,
    BkashRetryableError,
    BkashTokenRateLimited,
)
from providers.monetix import (
    MonetixBadSignature,
    MonetixError,
    MonetixGateClient,
    MonetixResultUnknown,
)

# The activity error of a provider that did not answer: the attempt fails, Temporal retries it, and
# the heartbeat carries the items already checked to the next attempt.
PROVIDER_UNAVAILABLE = "ReconciliationProviderUnavailable"
# Items checked side by side within a batch (the pacer still spaces their calls).
CONCURRENCY = 4
_STAGE = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_STAGE.value)
_TRANSIENT = (BkashNoResponse, BkashRetryableError, BkashTokenRateLimited, MonetixResultUnknown)


def _names(types: Iterable[str]) -> str:
    return ", ".join(f'"{t}"' for t in types)


def visibility_query(req: PageRequest) -> str:
    """Each source as a visibility query (SQL and Elasticsearch visibility both take these)."""
    start, end = iso(req.window.start), iso(req.window.end)
    if req.source is Source.CLOSED_PAYMENTS:
        return (f"WorkflowType IN ({_names(PAYMENT_WORKFLOWS)}) AND CloseTime >= \"{start}\" "
                f"AND CloseTime < \"{end}\"")
    if req.source is Source.REFUND_LEDGERS:
        # A ledger stays open for its refund window (15 days for bKash): any refund of it may
        # have ended in this window, so every ledger open at some point during it is read.
        return (f"WorkflowType = \"{LEDGER_WORKFLOW}\" AND StartTime < \"{end}\" AND "
                f"(ExecutionStatus = \"Running\" OR CloseTime >= \"{start}\")")
    # A running payment's deadline is at least `overdue_grace` after its start.
    return (f"WorkflowType IN ({_names(PAYMENT_WORKFLOWS)}) AND ExecutionStatus = \"Running\" "
            f"AND StartTime < \"{iso(req.window.end - req.overdue_grace)}\"")


_KIND = {Source.CLOSED_PAYMENTS: ItemKind.PAYMENT, Source.REFUND_LEDGERS: ItemKind.LEDGER,
         Source.RUNNING_PAYMENTS: ItemKind.RUNNING}


def _ref(kind: ItemKind, wf: WorkflowExecution) -> ItemRef:
    return ItemRef(kind=kind, workflow_id=wf.id, run_id=wf.run_id, workflow_type=wf.workflow_type,
                   status=wf.status.name if wf.status else "UNKNOWN", started_at=wf.start_time,
                   closed_at=wf.close_time, stage=wf.typed_search_attributes.get(_STAGE))


class ReconciliationActivities:
    """The Temporal client (default: the worker's own, ``activity.client()``), each merchant
    account's provider clients, and where the reports go."""

    def __init__(self, bkash: Mapping[str, BkashClient] | None = None,
                 monetix: Mapping[str, MonetixGateClient] | None = None, *,
                 client: Client | None = None, report_dir: str | Path | None = None) -> None:
        self._client = client
        self._bkash = AccountClients("bKash", dict(bkash or {}))
        self._monetix = AccountClients("Monetix", dict(monetix or {}))
        self.report_dir = Path(report_dir or os.environ.get(REPORT_DIR_SETTING)
                               or DEFAULT_REPORT_DIR)

    @property
    def client(self) -> Client:
        return self._client or activity.client()

    def all(self) -> list:
        return [self.reconciliation_list_page, self.reconciliation_check_batch,
                self.reconciliation_previous_report, self.reconciliation_write_report]

    # -- listing --------------------------------------------------------------------------------

    @activity.defn(name=ReconciliationActivity.LIST_PAGE)
    async def reconciliation_list_page(self, req: PageRequest) -> Page:
        token = base64.b64decode(req.page_token) if req.page_token else None
        listing = self.client.list_workflows(visibility_query(req), page_size=req.page_size,
                                             next_page_token=token)
        await listing.fetch_next_page()
        nxt = listing.next_page_token
        return Page(refs=[_ref(_KIND[req.source], wf) for wf in listing.current_page],
                    next_token=base64.b64encode(nxt).decode() if nxt else None)

    # -- checking -------------------------------------------------------------------------------

    @activity.defn(name=ReconciliationActivity.CHECK_BATCH)
    async def reconciliation_check_batch(self, inp: BatchInput) -> BatchResult:
        """Check every item, at most ``options.calls_per_second`` provider calls a second. The
        items done so far travel in the heartbeat: a retried attempt (a provider down for a while,
        a worker restart) goes on after them instead of asking the provider again."""
        done, out = 0, BatchResult()
        details = activity.info().heartbeat_details
        if details:
            done, out = int(details[0]["done"]), BatchResult.model_validate(details[0]["result"])
        pacer = Pacer(inp.options.calls_per_second)
        checks = Checks(self._bkash, self._monetix, pacer, inp.window, inp.options,
                        self._known_refunds)
        while done < len(inp.refs):
            chunk = inp.refs[done:done + CONCURRENCY]
            parts = [BatchResult() for _ in chunk]
            await asyncio.gather(*(self._check(checks, inp, ref, part)
                                   for ref, part in zip(chunk, parts)))
            for part in parts:
                out.checked = out.checked.plus(part.checked)
                out.divergences += part.divergences
                out.unchecked += part.unchecked
            done += len(chunk)
            out.provider_calls += pacer.calls
            pacer.calls = 0
            activity.heartbeat({"done": done, "result": out.model_dump(mode="json")})
        return out

    async def _check(self, checks: Checks, inp: BatchInput, ref: ItemRef, out: BatchResult) -> None:
        try:
            if ref.kind is ItemKind.RUNNING:
                await self._check_running(inp, ref, out)
            elif ref.kind is ItemKind.LEDGER:
                state = await self._ledger(ref.workflow_id, ref)
                if state is not None:
                    await checks.refunds(ref, state, out)
            elif ref.status != WorkflowExecutionStatus.COMPLETED.name:
                out.divergences.append(_no_outcome(ref))
            elif ref.workflow_type == BKASH_WORKFLOW:
                await checks.bkash_payment(ref, await self._result(ref, BkashPaymentResult), out)
            else:
                await checks.monetix_payment(ref, await self._result(ref, MonetixPurchaseResult),
                                             out)
        except _TRANSIENT as err:
            if isinstance(err, MonetixBadSignature):
                out.unchecked.append(Unchecked(source=ref.workflow_id, reason=str(err)))
                return
            raise ApplicationError(f"{ref.workflow_id}: {err}; retried", type=PROVIDER_UNAVAILABLE,
                                   next_retry_delay=getattr(err, "retry_after", None)) from None
        except (BkashError, MonetixError, ValueError) as err:
            out.unchecked.append(Unchecked(source=ref.workflow_id,
                                           reason=f"{type(err).__name__}: {err}"))
        except ApplicationError as err:  # an account this worker has no settings for
            out.unchecked.append(Unchecked(source=ref.workflow_id, reason=err.message))

    async def _check_running(self, inp: BatchInput, ref: ItemRef, out: BatchResult) -> None:
        out.checked.running += 1
        request = await self._input(ref)
        deadline = payment_deadline(ref.workflow_type, request, ref.started_at,
                                    inp.options.overdue_grace)
        # Reported in the window its deadline falls in, once that is past: each stuck payment
        # belongs to one window, as each closed one does.
        if not inp.window.holds(deadline) or deadline > datetime.now(timezone.utc):
            return
        handle = self.client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return  # it ended since it was listed: a closed payment, checked in its own window
        stage = ref.stage or "RUNNING"
        out.divergences.append(Divergence(
            kind=DivergenceKind.OVERDUE, provider=provider_of(ref.workflow_type),
            source=ref.workflow_id, payment_key=ref.workflow_id,
            account_id=account_of(ref.workflow_id), stage=stage,
            project=f"{stage} since {iso(ref.started_at)}",
            amount_poisha=getattr(request, "amount_poisha", None),
            detail=f"still running ({stage}) past its deadline {iso(deadline)}: its approval, "
                   f"hold and provider windows plus {duration_text(inp.options.overdue_grace)} "
                   "are over; look at its pending activity in the Web UI"))

    # -- what the project recorded, from Temporal ---------------------------------------------

    async def _result(self, ref: ItemRef, result_type: type):
        return await self.client.get_workflow_handle(
            ref.workflow_id, run_id=ref.run_id, result_type=result_type).result(follow_runs=False)

    async def _input(self, ref: ItemRef):
        """A running payment's request: the input of its first history event."""
        client = self.client
        history = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace, maximum_page_size=1,
                execution=ExecutionRef(workflow_id=ref.workflow_id, run_id=ref.run_id)),
            retry=True)
        started = history.history.events[0].workflow_execution_started_event_attributes
        [request] = await client.data_converter.decode(
            list(started.input.payloads), [request_type(ref.workflow_type)])
        return request

    async def _ledger(self, ledger_id: str, ref: ItemRef | None = None) -> RefundsState | None:
        """A refund ledger as it stands: a running one answers its query, a closed one its result."""
        handle = self.client.get_workflow_handle(ledger_id, run_id=ref.run_id if ref else None,
                                                 result_type=RefundsState)
        try:
            status = ref.status if ref else (await handle.describe()).status.name
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if status == WorkflowExecutionStatus.RUNNING.name:
            return await handle.query(RefundOp.STATE, result_type=RefundsState)
        if status == WorkflowExecutionStatus.COMPLETED.name:
            return await handle.result(follow_runs=False)
        return None

    async def _known_refunds(self, payment_workflow_id: str) -> set[str]:
        state = await self._ledger(f"refunds-{payment_workflow_id}")
        return {r.provider_refund_id for r in (state.refunds if state else [])
                if r.provider_refund_id}

    # -- reports --------------------------------------------------------------------------------

    @activity.defn(name=ReconciliationActivity.PREVIOUS_REPORT)
    async def reconciliation_previous_report(self, workflow_id: str) -> ReconciliationReport | None:
        """The result of the latest completed run of this window (None: the first run)."""
        latest: WorkflowExecution | None = None
        query = (f"WorkflowId = \"{workflow_id}\" AND WorkflowType = \"{RUN_WORKFLOW}\" AND "
                 "ExecutionStatus = \"Completed\"")
        async for wf in self.client.list_workflows(query):
            if latest is None or (wf.close_time or wf.start_time) > (latest.close_time
                                                                     or latest.start_time):
                latest = wf
        if latest is None:
            return None
        return await self.client.get_workflow_handle(
            workflow_id, run_id=latest.run_id, result_type=ReconciliationReport).result(
                follow_runs=False)

    @activity.defn(name=ReconciliationActivity.WRITE_REPORT)
    async def reconciliation_write_report(self, report: ReconciliationReport) -> ReportFiles:
        """``<dir>/<window>.json`` and ``.csv``, replaced whole (a re-run rewrites the same files)."""
        self.report_dir.mkdir(parents=True, exist_ok=True)
        stem = self.report_dir.resolve() / report.window.file_stem
        files = ReportFiles(json_path=str(stem.with_suffix(".json")),
                            csv_path=str(stem.with_suffix(".csv")))
        body = report.model_dump(mode="json", exclude=set(ReconciliationReport.RUN_FIELDS))
        _replace(Path(files.json_path), json.dumps(body, indent=2, sort_keys=False) + "\n")
        _replace(Path(files.csv_path), report_csv(report.divergences))
        return files


def report_csv(divergences: list[Divergence]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for d in divergences:
        row = d.model_dump(mode="json")
        writer.writerow(["" if row[c] is None else row[c] for c in REPORT_COLUMNS])
    return out.getvalue()


def _replace(path: Path, text: str) -> None:
    # Written beside and renamed: a reader never sees half a report.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _no_outcome(ref: ItemRef) -> Divergence:
    return Divergence(
        kind=DivergenceKind.NO_OUTCOME, provider=provider_of(ref.workflow_type),
        source=ref.workflow_id, payment_key=ref.workflow_id, account_id=account_of(ref.workflow_id),
        stage=ref.stage or ref.status, project=ref.status,
        detail=f"the payment's workflow ended {ref.status} without a result (an operator's "
               "terminate?): what the provider holds for it is unknown; check it by hand")


def reconciliation_activities(activities: Iterable, *, client: Client | None = None,
                              report_dir: str | Path | None = None) -> list:
    """The reconciliation activities for a worker, over the provider clients of the activity
    objects ``worker.build_activities`` made (the same per-account clients, the same tokens)."""
    from activities.bkash import BkashActivities
    from activities.monetix import MonetixActivities

    bkash: dict[str, BkashClient] = {}
    monetix: dict[str, MonetixGateClient] = {}
    for method in activities:
        owner = getattr(method, "__self__", None)
        # Their AccountClients: one client per merchant account, each with its own token.
        if isinstance(owner, BkashActivities):
            bkash = owner._accounts.clients
        elif isinstance(owner, MonetixActivities):
            monetix = owner._accounts.clients
    return ReconciliationActivities(bkash, monetix, client=client, report_dir=report_dir).all()
