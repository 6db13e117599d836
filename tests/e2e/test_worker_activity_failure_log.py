"""A retried provider fault is one log line (payment, operation, attempt, error); only a bug (an
exception that is not a temporalio ApplicationError) keeps its traceback."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from contracts.bkash import BkashStage
from merchant_client import report_service_delivered
from tests.support.bkash import kinds, pay, result, wait_for_stage
from worker import install_activity_failure_log


def failure_records(caplog, workflow_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "temporalio.activity"
            and (getattr(r, "temporal_activity", None) or {}).get("workflow_id") == workflow_id
            and r.levelno >= logging.WARNING]


async def test_capture_retried_through_503s_logs_one_line_per_attempt(stack, caplog):
    caplog.set_level(logging.WARNING, logger="temporalio.activity")
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    await stack.sandbox.add_fault("capture", "http_error", status=503, times=2,
                                  match={"paymentID": url.payment_id})
    await report_service_delivered(stack.client, req.invoice_number)
    assert (await result(stack, req)).stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]

    records = failure_records(caplog, req.workflow_id)
    assert len(records) == 2, [r.getMessage() for r in records]
    for attempt, record in enumerate(records, start=1):
        line = record.getMessage()
        assert line.startswith(f"payment {req.workflow_id}: capture_payment attempt {attempt} "
                               "failed: "), line
        assert "503" in line and "\n" not in line
        assert record.exc_info is None and not record.exc_text


@activity.defn
async def flaky_operation(kind: str) -> str:
    if activity.info().attempt == 1:
        if kind == "provider":
            raise ApplicationError("provider answered 503", type="ProviderUnavailable")
        return {}["missing"]  # a bug: KeyError
    return "done"


@workflow.defn(sandboxed=False)
class FlakyOperation:
    @workflow.run
    async def run(self, kind: str) -> str:
        return await workflow.execute_activity(
            flaky_operation, kind, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)))


async def test_a_bug_keeps_its_traceback_a_provider_fault_does_not(dev_env, caplog):
    caplog.set_level(logging.WARNING, logger="temporalio.activity")
    install_activity_failure_log()
    task_queue = f"flaky-{uuid.uuid4().hex[:8]}"
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[FlakyOperation],
                      activities=[flaky_operation], workflow_runner=UnsandboxedWorkflowRunner()):
        ids = {}
        for kind in ("provider", "bug"):
            ids[kind] = f"flaky-{kind}-{uuid.uuid4().hex[:8]}"
            assert await dev_env.client.execute_workflow(
                FlakyOperation.run, kind, id=ids[kind], task_queue=task_queue) == "done"

    [provider] = failure_records(caplog, ids["provider"])
    assert provider.getMessage() == (f"payment {ids['provider']}: flaky_operation attempt 1 failed: "
                                     "ProviderUnavailable: provider answered 503")
    assert provider.exc_info is None
    [bug] = failure_records(caplog, ids["bug"])
    assert bug.getMessage() == (f"payment {ids['bug']}: flaky_operation attempt 1 failed with an "
                                "unexpected KeyError (a bug)")
    assert bug.exc_info and isinstance(bug.exc_info[1], KeyError)
