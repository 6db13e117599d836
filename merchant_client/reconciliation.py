"""Reconciliation from merchant code and the CLI (README "Reconciliation"): run one window now, keep
the schedule that runs one every day (or as configured), trigger it, read a window's report.

    report = await reconcile(client, Window(start=..., end=...))   # waits for the report
    await ensure_schedule(client, every=timedelta(hours=24))       # created, or updated in place

Needs only the Temporal connection: the checks run in the worker, with its provider credentials, and
the report files are written on the worker's host (PAYMENTS_RECONCILIATION_DIR there).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from contracts.common import TASK_QUEUE
from contracts.reconciliation import (
    RUN_WORKFLOW,
    SCHEDULE_ID,
    ReconciliationInput,
    ReconciliationOptions,
    ReconciliationReport,
    Window,
    iso,
)
from merchant_client.connection import PaymentError, explain_rpc_error

# Fires missed while Temporal or the workers were down are run when they are back, up to this old
# (each fire is its own window, so a missed day is a window nobody reconciled).
CATCHUP_WINDOW = timedelta(days=3)


async def reconcile(client: Client, window: Window, options: ReconciliationOptions | None = None,
                    *, task_queue: str = TASK_QUEUE, wait: bool = True) -> ReconciliationReport | None:
    """Reconcile ``window`` now. A run of it already going is joined, not doubled; one that ended
    is run again (same report when nothing changed, no second notification of a divergence)."""
    inp = ReconciliationInput(window=window, options=options or ReconciliationOptions())
    try:
        handle = await client.start_workflow(
            RUN_WORKFLOW, inp, id=window.workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            result_type=ReconciliationReport, static_summary=f"reconcile {window.label}")
        if not wait:
            return None
        return await handle.result()
    except WorkflowFailureError as err:
        raise PaymentError(f"reconciliation of {window.label} failed: "
                           f"{getattr(err.cause, 'message', err.cause)}") from None
    except RPCError as err:
        raise explain_rpc_error(err, f"reconciliation of {window.label}", client) or err from None


async def window_report(client: Client, window: Window) -> ReconciliationReport:
    """The report of the latest finished run of ``window``."""
    latest = None
    query = (f'WorkflowId = "{window.workflow_id}" AND WorkflowType = "{RUN_WORKFLOW}" AND '
             'ExecutionStatus = "Completed"')
    try:
        async for wf in client.list_workflows(query):
            if latest is None or (wf.close_time and latest.close_time
                                  and wf.close_time > latest.close_time):
                latest = wf
        if latest is None:
            raise PaymentError(f"no finished reconciliation of {window.label}: run it with "
                               f"reconcile run --from {iso(window.start)} --to {iso(window.end)}")
        return await client.get_workflow_handle(
            window.workflow_id, run_id=latest.run_id,
            result_type=ReconciliationReport).result(follow_runs=False)
    except RPCError as err:
        raise explain_rpc_error(err, f"reconciliation of {window.label}", client) or err from None


def schedule_of(*, every: timedelta | None = None, cron: str | None = None,
                window_length: timedelta | None = None, lag: timedelta = timedelta(minutes=15),
                options: ReconciliationOptions | None = None,
                task_queue: str = TASK_QUEUE, schedule_id: str = SCHEDULE_ID) -> Schedule:
    """The schedule: every ``every`` (24 h windows fire at 00:00 UTC + ``lag``) or at ``cron``
    (UTC); each fire reconciles the window of ``window_length`` that ended ``lag`` before it."""
    if (every is None) == (cron is None):
        raise PaymentError("give one of --every (e.g. 24h) or --cron (e.g. '15 0 * * *')")
    length = window_length or every or timedelta(hours=24)
    inp = ReconciliationInput(window=None, window_length=length, lag=lag,
                              options=options or ReconciliationOptions())
    if every is not None:
        # The offset puts each fire ``lag`` after a multiple of ``every`` since the epoch, where
        # its window ends (contracts.reconciliation.window_ending).
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(
            every=every, offset=timedelta(seconds=lag.total_seconds() % every.total_seconds()))])
    else:
        spec = ScheduleSpec(cron_expressions=[cron])
    return Schedule(
        action=ScheduleActionStartWorkflow(RUN_WORKFLOW, inp, id=schedule_id, task_queue=task_queue,
                                           static_summary="scheduled payments reconciliation"),
        spec=spec,
        # Each fire is a different window: a slow run delays the next one, never skips it.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL,
                              catchup_window=CATCHUP_WINDOW))


async def ensure_schedule(client: Client, schedule: Schedule | None = None, *,
                          schedule_id: str = SCHEDULE_ID, **spec) -> str:
    """Create the schedule, or bring the existing one to ``schedule`` (idempotent: running it twice
    leaves one schedule). Its paused/unpaused state and notes are kept. Returns "created" or
    "updated"."""
    schedule = schedule or schedule_of(schedule_id=schedule_id, **spec)
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass
    except RPCError as err:
        raise _schedule_error(err, client) from None

    def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=dataclasses.replace(
            schedule, state=current.description.schedule.state))

    try:
        await client.get_schedule_handle(schedule_id).update(keep_state)
    except RPCError as err:
        raise _schedule_error(err, client) from None
    return "updated"


def _schedule_error(err: RPCError, client: Client) -> Exception:
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        # Temporal checks the spec (a cron expression it cannot read, say).
        return PaymentError(f"Temporal refused the schedule: {err.message} (check --cron / "
                            "--every)")
    return explain_rpc_error(err, "reconciliation schedule", client) or err


async def trigger_schedule(client: Client, schedule_id: str = SCHEDULE_ID) -> None:
    """Fire the schedule now: it reconciles the last whole window (a re-run if it ran already)."""
    try:
        await client.get_schedule_handle(schedule_id).trigger(
            overlap=ScheduleOverlapPolicy.BUFFER_ALL)
    except RPCError as err:
        raise explain_rpc_error(err, f"schedule {schedule_id} (create it with reconcile "
                                "schedule)", client) or err from None
