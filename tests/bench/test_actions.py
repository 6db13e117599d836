"""The billable-action rules of bench/actions.py, on a small hand-made history (no server)."""

from __future__ import annotations

import base64
import json

from temporalio.client import WorkflowHistory

from bench.actions import figures


def _event(event_id: int, kind: str, ms: int, **attributes) -> dict:
    event = {"eventId": str(event_id), "eventType": f"EVENT_TYPE_{kind}",
             "eventTime": f"2026-01-01T00:00:00.{ms:03d}Z"}
    event.update(attributes)
    return event


def _keyword(value: str) -> dict:
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return {"metadata": {"encoding": b64("json/plain"), "type": b64("Keyword")},
            "data": b64(json.dumps(value))}


HISTORY = {"events": [
    _event(1, "WORKFLOW_EXECUTION_STARTED", 0,
           workflowExecutionStartedEventAttributes={"workflowType": {"name": "X"}}),
    _event(2, "WORKFLOW_TASK_SCHEDULED", 1, workflowTaskScheduledEventAttributes={}),
    _event(3, "WORKFLOW_TASK_STARTED", 5,
           workflowTaskStartedEventAttributes={"scheduledEventId": "2"}),
    _event(4, "WORKFLOW_TASK_COMPLETED", 15,
           workflowTaskCompletedEventAttributes={"scheduledEventId": "2", "startedEventId": "3"}),
    _event(5, "WORKFLOW_EXECUTION_UPDATE_ACCEPTED", 15,
           workflowExecutionUpdateAcceptedEventAttributes={}),
    _event(6, "ACTIVITY_TASK_SCHEDULED", 16, activityTaskScheduledEventAttributes={}),
    # the third attempt succeeded: three starts are billed
    _event(7, "ACTIVITY_TASK_STARTED", 18,
           activityTaskStartedEventAttributes={"scheduledEventId": "6", "attempt": 3}),
    _event(8, "ACTIVITY_TASK_COMPLETED", 48,
           activityTaskCompletedEventAttributes={"scheduledEventId": "6", "startedEventId": "7"}),
    _event(9, "TIMER_STARTED", 49, timerStartedEventAttributes={"timerId": "1"}),
    _event(10, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", 49,
           upsertWorkflowSearchAttributesEventAttributes={"searchAttributes": {"indexedFields": {
               "PaymentStage": _keyword("x"), "ProviderPaymentId": _keyword("y")}}}),
    _event(11, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", 49,
           upsertWorkflowSearchAttributesEventAttributes={"searchAttributes": {"indexedFields": {
               "TemporalChangeVersion": _keyword("v")}}}),
    _event(12, "WORKFLOW_EXECUTION_SIGNALED", 50,
           workflowExecutionSignaledEventAttributes={"signalName": "s"}),
    _event(13, "MARKER_RECORDED", 51,
           markerRecordedEventAttributes={"markerName": "core_local_activity",
                                          "workflowTaskCompletedEventId": "4"}),
    _event(14, "MARKER_RECORDED", 51,
           markerRecordedEventAttributes={"markerName": "core_local_activity",
                                          "workflowTaskCompletedEventId": "4"}),
    _event(15, "TIMER_CANCELED", 52, timerCanceledEventAttributes={"timerId": "1"}),
    _event(16, "WORKFLOW_EXECUTION_COMPLETED", 60,
           workflowExecutionCompletedEventAttributes={}),
]}


def test_billable_actions_follow_the_documented_rules():
    fig = figures(WorkflowHistory.from_json("wf", HISTORY))
    assert fig.events == 16
    assert dict(fig.actions) == {
        "workflow start": 1,
        "update": 1,
        "activity": 3,                  # every start and retry
        "timer": 1,                     # started, not cancelled
        "search attribute upsert": 1,   # two attributes in one command; versioning alone is free
        "signal": 1,
        "local activities": 1,          # all markers of one workflow task together
    }
    assert fig.total_actions == 9


def test_where_the_time_went_is_read_from_event_times():
    fig = figures(WorkflowHistory.from_json("wf", HISTORY))
    assert round(fig.wall * 1000) == 60
    assert round(fig.workflow_task_queued * 1000) == 4
    assert round(fig.workflow_task_running * 1000) == 10
    assert round(fig.activity_queued * 1000) == 2
    assert round(fig.activity_running * 1000) == 30
