"""History events and Temporal Cloud billable actions of one workflow execution, counted from its
fetched history, plus where its wall time went.

Counting rules (https://docs.temporal.io/cloud/actions, read 2026-11; reference §3 and §4.1):

| history event                                  | actions | rule                                                     |
|------------------------------------------------|---------|----------------------------------------------------------|
| WORKFLOW_EXECUTION_STARTED                     | 1       | workflow started (a de-duplicated start writes nothing)  |
| ACTIVITY_TASK_STARTED                          | attempt | each start *and each retry* of an activity; the history  |
|                                                |         | keeps only the last attempt's started event, whose       |
|                                                |         | ``attempt`` says how many starts there were              |
| ACTIVITY_TASK_SCHEDULED never started          | 0       | no worker took it (cancelled before it started)          |
| MARKER_RECORDED (local activities)             | 1 / WFT | all local activities of one workflow task count once     |
| TIMER_STARTED                                  | 1       | incl. the implicit timer of ``wait_condition(timeout=)`` |
| UPSERT_WORKFLOW_SEARCH_ATTRIBUTES              | 1       | one per command, however many attributes; attributes set |
|                                                |         | at start are free; TemporalChangeVersion alone is free   |
| WORKFLOW_EXECUTION_SIGNALED                    | 1       | signal received                                          |
| SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED   | 1       | signal sent from a workflow                              |
| WORKFLOW_EXECUTION_UPDATE_ACCEPTED             | 1       | incl. update-with-start (on top of the start); a         |
|                                                |         | de-duplicated update (same update id) writes nothing     |
| START_CHILD_WORKFLOW_EXECUTION_INITIATED       | 2       | child start + child execution                            |
| WORKFLOW_EXECUTION_OPTIONS_UPDATED             | 1       |                                                          |
| anything else (workflow tasks, completions,    | 0       | not billed                                               |
| cancellations, timer fired/cancelled, ...)     |         |                                                          |

Not in a history, so counted by the bench client instead (``ClientCounter``): **queries** (1 per
query a worker answers; the endpoint's result page queries an open payment once) and **rejected
updates** (1 each; a rejected update writes no event). Activity heartbeats (1 per heartbeat that
reaches the server) do not occur: no activity of this project heartbeats.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    OutboundInterceptor,
    QueryWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
)
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.client import WorkflowHistory

E = EventType
_ONE_ACTION = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow start",
    E.EVENT_TYPE_TIMER_STARTED: "timer",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal",
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signal",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "update",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED: "options update",
}
_VERSIONING_ONLY = {"TemporalChangeVersion"}


@dataclass
class HistoryFigures:
    events: int = 0
    actions: Counter = field(default_factory=Counter)
    # seconds, summed over the execution: where its wall time went
    wall: float = 0.0
    workflow_task_queued: float = 0.0   # WFT scheduled → a worker picked it up
    workflow_task_running: float = 0.0  # picked up → completed (worker code + its RPC)
    activity_queued: float = 0.0        # activity scheduled → a worker picked it up
    activity_running: float = 0.0       # activity code (the provider's HTTP call)

    @property
    def total_actions(self) -> int:
        return sum(self.actions.values())


def _seconds(event) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def figures(history: WorkflowHistory) -> HistoryFigures:
    out = HistoryFigures()
    events = list(history.events)
    out.events = len(events)
    if not events:
        return out
    out.wall = _seconds(events[-1]) - _seconds(events[0])
    by_id = {e.event_id: e for e in events}
    marker_tasks = set()
    for e in events:
        t = e.event_type
        if t in _ONE_ACTION:
            out.actions[_ONE_ACTION[t]] += 1
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            out.actions["activity"] += max(1, e.activity_task_started_event_attributes.attempt)
            scheduled = by_id.get(e.activity_task_started_event_attributes.scheduled_event_id)
            if scheduled is not None:
                out.activity_queued += _seconds(e) - _seconds(scheduled)
        elif t == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            names = set(e.upsert_workflow_search_attributes_event_attributes
                        .search_attributes.indexed_fields)
            if not names or names - _VERSIONING_ONLY:
                out.actions["search attribute upsert"] += 1
        elif t == E.EVENT_TYPE_MARKER_RECORDED:
            marker_tasks.add(e.marker_recorded_event_attributes.workflow_task_completed_event_id)
        elif t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            out.actions["child workflow"] += 2
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled = by_id.get(e.workflow_task_started_event_attributes.scheduled_event_id)
            if scheduled is not None:
                out.workflow_task_queued += _seconds(e) - _seconds(scheduled)
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            started = by_id.get(e.workflow_task_completed_event_attributes.started_event_id)
            if started is not None:
                out.workflow_task_running += _seconds(e) - _seconds(started)
        elif t in (E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                   E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, E.EVENT_TYPE_ACTIVITY_TASK_CANCELED):
            attrs = {E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: e.activity_task_completed_event_attributes,
                     E.EVENT_TYPE_ACTIVITY_TASK_FAILED: e.activity_task_failed_event_attributes,
                     E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: e.activity_task_timed_out_event_attributes,
                     E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: e.activity_task_canceled_event_attributes}[t]
            started = by_id.get(attrs.started_event_id)
            if started is not None:
                out.activity_running += _seconds(e) - _seconds(started)
    if marker_tasks:
        out.actions["local activities"] += len(marker_tasks)
    return out


class ClientCounter(ClientInterceptor):
    """Counts what a client does that is billed but leaves no history event: queries, and updates a
    validator rejected. Shared by the bench driver and the merchant endpoint (one client)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Counting(next, self.counts)


class _Counting(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, counts: Counter) -> None:
        super().__init__(next)
        self._counts = counts

    async def query_workflow(self, input: QueryWorkflowInput):
        self._counts["query"] += 1
        return await super().query_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput):
        handle = await super().start_workflow_update(input)
        self._count_failure(handle)
        return handle

    async def start_update_with_start_workflow(self, input: StartWorkflowUpdateWithStartInput):
        handle = await super().start_update_with_start_workflow(input)
        self._count_failure(handle)
        return handle

    def _count_failure(self, handle) -> None:
        # The project's update handlers never raise: an update that ends in failure was refused by
        # its validator, i.e. rejected (billed, but no history event).
        outcome = getattr(handle, "_known_outcome", None)
        if outcome is not None and outcome.HasField("failure"):
            self._counts["rejected update"] += 1
